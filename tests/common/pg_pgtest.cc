// The PostgreSQL layer against a real server: concurrent migrations, SQLSTATE mapping,
// and the append-only, hash-chained audit trail.
#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "common/pg.h"
#include "common/security_events.h"
#include "tests/support/test_env.h"

using namespace redflag;
using redflag::testing::TestPool;

TEST_CASE("replicas starting at once apply each migration exactly once", "[pg]") {
  REQUIRE(InitCrypto().ok());
  std::string schema = "mig_" + HexEncode(RandomBytes(4));
  std::vector<std::string> steps = {
      "CREATE TABLE " + schema + ".t (id int PRIMARY KEY)",
      "INSERT INTO " + schema + ".t VALUES (1)",
  };
  std::atomic<int> failures{0};
  std::vector<std::thread> replicas;
  for (int i = 0; i < 4; ++i) {
    replicas.emplace_back([&] {
      auto pool = TestPool(1);
      if (!ApplyMigrations(*pool, schema, steps).ok()) ++failures;
    });
  }
  for (auto& t : replicas) t.join();
  CHECK(failures == 0);
  auto pool = TestPool(1);
  const std::string count_sql = "SELECT count(*) FROM " + schema + ".t";
  Statement count{"test_count_mig", count_sql.c_str()};
  REQUIRE(pool->WithConnection([&](PgConnection& c) -> absl::Status {
                auto r = c.Exec(count);
                if (!r.ok()) return r.status();
                CHECK(r->Int(0, 0) == 1);
                return absl::OkStatus();
              })
              .ok());
}

TEST_CASE("SQLSTATEs map to status codes by retry behaviour", "[pg]") {
  CHECK(SqlStateToStatus("23505", "").code() == absl::StatusCode::kAlreadyExists);
  CHECK(SqlStateToStatus("40001", "").code() == absl::StatusCode::kAborted);
  CHECK(SqlStateToStatus("40P01", "").code() == absl::StatusCode::kAborted);
  CHECK(SqlStateToStatus("08006", "").code() == absl::StatusCode::kUnavailable);
  CHECK(SqlStateToStatus("57014", "").code() == absl::StatusCode::kDeadlineExceeded);
  absl::Status internal = SqlStateToStatus("XX000", "secret detail");
  CHECK(internal.code() == absl::StatusCode::kInternal);
  CHECK(std::string(internal.message()).find("secret") == std::string::npos);
}

TEST_CASE("a malformed id from a caller is INVALID_ARGUMENT, not INTERNAL", "[pg]") {
  auto pool = TestPool(1);
  Statement stmt{"test_uuid_cast", "SELECT $1::uuid"};
  absl::Status s =
      pool->WithConnection([&](PgConnection& c) { return c.Exec(stmt, {"not-a-uuid"}).status(); });
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("the audit trail is append-only and its chain verifies", "[pg][audit]") {
  REQUIRE(InitCrypto().ok());
  auto pool = TestPool(2);
  const std::string key = redflag::testing::TestVar("REDFLAG_AUDIT_KEY");
  SecurityEventWriter writer(*pool, "test", key);
  REQUIRE(writer.Migrate().ok());
  REQUIRE(writer.Record({"TEST_EVENT", "tester", "127.0.0.1", "{\"n\":1}"}).ok());
  REQUIRE(writer.Record({"TEST_EVENT", "tester", "127.0.0.1", "{\"n\":2}"}).ok());
  // A NUL in an agent-supplied value inside the JSON detail: jsonb cannot hold \u0000, so
  // JsonQuote spells it out and the event is recorded (before, the insert failed: event lost).
  REQUIRE(writer
              .Record({"TEST_EVENT", "tester", "127.0.0.1",
                       absl::StrCat("{\"reason\":", JsonQuote(std::string("a\0b", 3)), "}")})
              .ok());
  CHECK(pool->WithConnection([&](PgConnection& c) { return VerifyAuditChain(c, key); }).ok());

  Statement edit{"test_audit_edit", "UPDATE audit.security_events SET actor = 'mallory'"};
  Statement del{"test_audit_delete", "DELETE FROM audit.security_events"};
  absl::Status s = pool->WithConnection([&](PgConnection& c) { return c.Exec(edit).status(); });
  CHECK_FALSE(s.ok());
  s = pool->WithConnection([&](PgConnection& c) { return c.Exec(del).status(); });
  CHECK_FALSE(s.ok());

  // Even with the trigger bypassed (a superuser), an edit breaks the chain.
  Statement disable{
      "test_audit_disable",
      "ALTER TABLE audit.security_events DISABLE TRIGGER security_events_append_only"};
  Statement forge{"test_audit_forge",
                  "UPDATE audit.security_events SET actor = 'mallory' WHERE id = "
                  "(SELECT min(id) FROM audit.security_events)"};
  absl::Status tampered = pool->InTransaction([&](PgConnection& c) -> absl::Status {
    if (auto r = c.Exec(disable); !r.ok()) return r.status();
    if (auto r = c.Exec(forge); !r.ok()) return r.status();
    absl::Status verify = VerifyAuditChain(c, key);
    CHECK(verify.code() == absl::StatusCode::kDataLoss);
    return absl::AbortedError("roll back the forgery");
  });
  CHECK(tampered.code() == absl::StatusCode::kAborted);
  CHECK(pool->WithConnection([&](PgConnection& c) { return VerifyAuditChain(c, key); }).ok());
}

namespace {

// How many times the plan of `sql` ($1 = a JSON array of `ids`) expanded the array: the
// "Actual Loops" of its ProjectSet node, from EXPLAIN ANALYZE.
int ArrayExpansions(PgPool& pool, const std::string& name, const std::string& sql,
                    const std::string& ids) {
  const std::string explain = "EXPLAIN (ANALYZE, FORMAT JSON) " + sql;
  Statement stmt{name.c_str(), explain.c_str()};
  int loops = -1;
  absl::Status s = pool.WithConnection([&](PgConnection& c) -> absl::Status {
    auto r = c.Exec(stmt, {ids});
    if (!r.ok()) return r.status();
    std::string plan;
    for (int i = 0; i < r->Rows(); ++i) plan += r->Text(i, 0);
    size_t node = plan.find("\"Node Type\": \"ProjectSet\"");
    if (node == std::string::npos) return absl::OkStatus();
    size_t at = plan.find("\"Actual Loops\": ", node);
    if (at != std::string::npos) loops = std::stoi(plan.substr(at + 16));
    return absl::OkStatus();
  });
  REQUIRE(s.ok());
  return loops;
}

}  // namespace

TEST_CASE("a JSON batch parameter is expanded once, not once per row", "[pg]") {
  // The fan-out's shape (updates.deliveries and its indexes): 500 agent ids against an
  // update's 10,000 deliveries, in a table whose statistics are not fresh yet (right after
  // a publication).
  REQUIRE(InitCrypto().ok());
  auto pool = TestPool(1);
  const std::string schema = "plan_" + HexEncode(RandomBytes(4));
  const std::string table = schema + ".d";
  const std::string setup =
      "CREATE SCHEMA " + schema + "; CREATE TABLE " + table +
      " (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), update_id int NOT NULL,"
      " agent_id text NOT NULL, state text NOT NULL DEFAULT 'OFFERED',"
      " offer_acked boolean NOT NULL DEFAULT false, UNIQUE (update_id, agent_id))"
      " WITH (autovacuum_enabled = false); CREATE INDEX ON " +
      table +
      " (update_id, id);"
      " CREATE INDEX ON " +
      table + " (agent_id); INSERT INTO " + table +
      " (update_id, agent_id) SELECT 1, 'agent-' || i FROM generate_series(1, 10000) i";
  REQUIRE(pool->WithConnection([&](PgConnection& c) { return c.ExecScript(setup); }).ok());
  std::vector<std::string> ids;
  for (int i = 1; i <= 500; ++i) ids.push_back(absl::StrCat("agent-", i * 20));
  const std::string json = JsonArray(ids);

  // The open-deliveries filter, which makes the planner expect one row and loop.
  const std::string open =
      " AND state IN ('OFFERED', 'DOWNLOADING', 'VERIFIED') AND NOT offer_acked";
  const std::string ours = "SELECT agent_id FROM " + table +
                           " WHERE update_id = 1 AND agent_id = " REDFLAG_ANY_OF_JSON("$1") + open;
  CHECK(ArrayExpansions(*pool, "plan_ours_" + schema, ours, json) == 1);
  // The form REDFLAG_ANY_OF_JSON replaced, to show this test sees the difference.
  const std::string in_select = "SELECT agent_id FROM " + table +
                                " WHERE update_id = 1 AND agent_id IN "
                                "(SELECT json_array_elements_text($1::json))" +
                                open;
  CHECK(ArrayExpansions(*pool, "plan_in_" + schema, in_select, json) > 100);
}
