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
#include "common/status.h"
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

// The EXPLAIN ANALYZE plan (JSON) of `sql` run with $1 = `ids`, as the services run it:
// Planning::kPrepared ends with the generic plan PostgreSQL switches a prepared statement to
// after a few executions (built from the statistics of the moment, blind to the values);
// Planning::kPerCall is planned with the values.
std::string PlanOf(PgPool& pool, Planning planning, const std::string& name, const std::string& sql,
                   const std::string& ids) {
  Statement stmt{name.c_str(), sql.c_str()};
  const std::string explain_sql =
      "EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE " + name + "('" + ids + "')";
  const std::string explain_name = name + "_explain";
  Statement explain{explain_name.c_str(), explain_sql.c_str()};
  std::string plan;
  absl::Status s = pool.WithConnection([&](PgConnection& c) -> absl::Status {
    REDFLAG_RETURN_IF_ERROR(c.ExecScript(planning == Planning::kPrepared
                                             ? "SET plan_cache_mode = force_generic_plan"
                                             : "SET plan_cache_mode = force_custom_plan"));
    absl::Status run = [&]() -> absl::Status {
      REDFLAG_RETURN_IF_ERROR(c.Exec(stmt, {ids}).status());  // prepares it
      REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(explain));
      for (int i = 0; i < r.Rows(); ++i) plan += r.Text(i, 0);
      return absl::OkStatus();
    }();
    REDFLAG_RETURN_IF_ERROR(c.ExecScript("RESET plan_cache_mode"));
    return run;
  });
  REQUIRE(s.ok());
  return plan;
}

// How many times `plan` expanded the array: the "Actual Loops" of the node that calls
// json_array_elements_text (a ProjectSet in an expression, a Function Scan in FROM).
int ArrayExpansions(const std::string& plan) {
  size_t node = plan.find("\"Node Type\": \"ProjectSet\"");
  if (node == std::string::npos) node = plan.find("\"Node Type\": \"Function Scan\"");
  if (node == std::string::npos) return -1;
  size_t at = plan.find("\"Actual Loops\": ", node);
  return at == std::string::npos ? -1 : std::stoi(plan.substr(at + 16));
}

// Whether `plan` filters rows with a parameter array (`= ANY ($0)`): searched linearly for
// every row scanned. A constant array in a filter is searched by hash.
bool FiltersRowsByParamArray(const std::string& plan) {
  for (size_t at = plan.find("\"Filter\": \""); at != std::string::npos;
       at = plan.find("\"Filter\": \"", at + 1)) {
    size_t end = plan.find('"', at + 11);
    if (plan.substr(at, end - at).find("ANY ($") != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("a batch of ids is matched against a big table without n x m work", "[pg]") {
  // The fan-out's shape (updates.deliveries and its indexes): 500 agent ids against an
  // update's 10,000 deliveries, in a table whose statistics are stale (analysed when it held
  // a few deliveries of other updates, as right after a publication) and with the generic
  // plan PostgreSQL builds for a prepared statement.
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
      " (update_id, agent_id) SELECT i, 'old-' || i FROM generate_series(2, 201) i; ANALYZE " +
      table + "; INSERT INTO " + table +
      " (update_id, agent_id) SELECT 1, 'agent-' || i FROM generate_series(1, 10000) i";
  REQUIRE(pool->WithConnection([&](PgConnection& c) { return c.ExecScript(setup); }).ok());
  std::vector<std::string> ids;
  for (int i = 1; i <= 500; ++i) ids.push_back(absl::StrCat("agent-", i * 20));
  const std::string json = JsonArray(ids);
  // The update's deliveries and the stale statistics (the planner expects 1 row per update).
  const std::string open =
      " AND state IN ('OFFERED', 'DOWNLOADING', 'VERIFIED') AND NOT offer_acked";

  // `= ANY($1::text[])` planned per call, as the open-deliveries statement does it: on these
  // statistics PostgreSQL still scans the update's 10,000 rows, but the array is a constant
  // (searched by hash), and the 500 rows are found.
  const std::string per_call = "SELECT agent_id FROM " + table +
                               " WHERE update_id = 1 AND agent_id = ANY($1::text[])" + open;
  std::string plan =
      PlanOf(*pool, Planning::kPerCall, "plan_per_call_" + schema, per_call, PgTextArray(ids));
  CHECK_FALSE(FiltersRowsByParamArray(plan));
  CHECK(plan.find("\"Actual Rows\": 500") != std::string::npos);

  // `= ANY(ARRAY(...))` prepared expands the array once but, on these statistics, searches it
  // for every one of the update's 10,000 rows: what the per-call form replaced for big tables.
  const std::string any = "SELECT agent_id FROM " + table +
                          " WHERE update_id = 1 AND agent_id = " REDFLAG_ANY_OF_JSON("$1") + open;
  plan = PlanOf(*pool, Planning::kPrepared, "plan_any_" + schema, any, json);
  CHECK(ArrayExpansions(plan) == 1);
  CHECK(FiltersRowsByParamArray(plan));

  // `IN (SELECT ...)` expands the array once per row.
  const std::string in_select = "SELECT agent_id FROM " + table +
                                " WHERE update_id = 1 AND agent_id IN "
                                "(SELECT json_array_elements_text($1::json))" +
                                open;
  CHECK(ArrayExpansions(PlanOf(*pool, Planning::kPrepared, "plan_in_" + schema, in_select, json)) >
        100);
}

TEST_CASE("a text[] parameter carries any string intact, per-call statements take it", "[pg]") {
  auto pool = TestPool(1);
  const std::vector<std::string> items = {
      "plain", "with \"quotes\"", "back\\slash", "a,b", "{braces}", "NULL", " spaced ",
      "",      "ünïcode"};
  static constexpr Statement kRoundTrip{
      "text_array_round_trip",
      "SELECT x FROM unnest($1::text[]) WITH ORDINALITY AS t(x, n) ORDER BY n", Planning::kPerCall};
  std::vector<std::optional<std::string>> got;
  REQUIRE(pool->WithConnection([&](PgConnection& c) -> absl::Status {
                for (int run = 0; run < 7; ++run) {  // past the point a prepared one goes generic
                  REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kRoundTrip, {PgTextArray(items)}));
                  got.clear();
                  for (int i = 0; i < r.Rows(); ++i) {
                    got.push_back(r.IsNull(i, 0) ? std::nullopt
                                                 : std::optional<std::string>(r.Text(i, 0)));
                  }
                }
                return absl::OkStatus();
              })
              .ok());
  REQUIRE(got.size() == items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    REQUIRE(got[i].has_value());
    CHECK(*got[i] == items[i]);
  }
}

namespace {

// The server process behind the pool's (only) connection.
std::string BackendPid(PgPool& pool) {
  static constexpr Statement kPid{"test_backend_pid", "SELECT pg_backend_pid()::text"};
  std::string pid;
  REQUIRE(pool.WithConnection([&](PgConnection& c) -> absl::Status {
                REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kPid));
                pid = r.Text(0, 0);
                return absl::OkStatus();
              })
              .ok());
  return pid;
}

// Ends that server process from another connection, as a PostgreSQL restart does.
void TerminateBackend(const std::string& pid) {
  static constexpr Statement kTerminate{"test_terminate", "SELECT pg_terminate_backend($1::int)"};
  auto killer = TestPool(1);
  REQUIRE(
      killer->WithConnection([&](PgConnection& c) { return c.Exec(kTerminate, {pid}).status(); })
          .ok());
}

}  // namespace

TEST_CASE("a pooled connection the server dropped is re-established for the next caller",
          "[pg][faults]") {
  auto pool = TestPool(1);
  const std::string before = BackendPid(*pool);
  TerminateBackend(before);
  // The first use after the drop succeeds: the pool reconnects and runs the work again,
  // since nothing of it had run.
  int calls = 0;
  static constexpr Statement kOne{"test_one", "SELECT 1"};
  absl::Status s = pool->WithConnection([&](PgConnection& c) {
    ++calls;
    return c.Exec(kOne).status();
  });
  CHECK(s.ok());
  CHECK(calls == 2);
  CHECK(pool->reconnects() == 1);
  CHECK(BackendPid(*pool) != before);
}

TEST_CASE("work that broke after a statement succeeded is not run again", "[pg][faults]") {
  auto pool = TestPool(1);
  const std::string pid = BackendPid(*pool);
  int calls = 0;
  static constexpr Statement kOne{"test_one", "SELECT 1"};
  absl::Status s = pool->InTransaction([&](PgConnection& c) -> absl::Status {
    ++calls;
    REDFLAG_RETURN_IF_ERROR(c.Exec(kOne).status());  // BEGIN and this reached the server
    TerminateBackend(pid);
    return c.Exec(kOne).status();
  });
  CHECK(s.code() == absl::StatusCode::kUnavailable);
  CHECK(calls == 1);  // its outcome is the caller's to judge: it sees UNAVAILABLE
  // The pool itself recovers for the next caller.
  CHECK(pool->WithConnection([&](PgConnection& c) { return c.Exec(kOne).status(); }).ok());
}
