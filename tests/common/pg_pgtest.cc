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
