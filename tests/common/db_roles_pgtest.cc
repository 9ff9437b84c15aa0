// Least privilege in PostgreSQL, against the test cluster's real roles (made by
// deploy/postgres/bootstrap.sql): a service role may do its work and record audit events, and
// nothing else — not rewrite or hide the audit trail, not read another service's schema, not
// change its own schema. The owner and a superuser are refused as a service's connection.
#include <libpq-fe.h>

#include <catch2/catch.hpp>

#include "common/crypto.h"
#include "common/db_roles.h"
#include "common/encoding.h"
#include "common/security_events.h"
#include "services/agents/store.h"
#include "services/auth/store.h"
#include "tests/support/test_env.h"

using namespace redflag;
using redflag::testing::TestPool;
using redflag::testing::TestPoolAs;
using redflag::testing::TestVar;

namespace {

// The SQLSTATE `sql` fails with on `pool` ("" when it succeeds).
std::string SqlState(PgPool& pool, const std::string& sql) {
  std::string state;
  absl::Status s = pool.WithConnection([&](PgConnection& c) {
    PgResult r(PQexec(c.raw(), sql.c_str()));
    ExecStatusType st = PQresultStatus(r.raw());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      const char* code = PQresultErrorField(r.raw(), PG_DIAG_SQLSTATE);
      state = code != nullptr ? code : "?";
    }
    return absl::OkStatus();
  });
  REQUIRE(s.ok());
  return state;
}

}  // namespace

TEST_CASE("a service role records audit events but cannot rewrite, hide or widen anything",
          "[pg][roles][attack]") {
  REQUIRE(InitCrypto().ok());
  const std::string key = TestVar("REDFLAG_AUDIT_KEY");
  // As redflag-migrate does: migrations and grants as the owner.
  auto owner = TestPool(1);
  REQUIRE(SecurityEventWriter(*owner, "test", key).Migrate().ok());
  REQUIRE(auth::AuthStore(*owner).Migrate().ok());
  REQUIRE(agents::AgentStore(*owner).Migrate().ok());
  REQUIRE(
      owner
          ->WithConnection([](PgConnection& c) {
            return GrantServiceRoles(c, {{"auth", "redflag_auth"}, {"agents", "redflag_agents"}});
          })
          .ok());

  auto svc = TestPoolAs("redflag_auth", TestVar("REDFLAG_DB_AUTH_PASSWORD"));
  // The legitimate work goes through: the start-up check, its own tables, the audit trail.
  CHECK(svc->WithConnection([](PgConnection& c) { return RequireLeastPrivilege(c); }).ok());
  CHECK(svc->WithConnection([](PgConnection& c) {
             return RequireMigrated(c, "auth", auth::AuthStore::Migrations().size());
           })
            .ok());
  auth::AuthStore store(*svc);
  CHECK(store.EnsureUser("roles-test-" + HexEncode(RandomBytes(4)), "hash", "viewer").ok());
  SecurityEventWriter events(*svc, "redflag-auth", key);
  REQUIRE(events.Record({"ROLES_TEST", "tester", "127.0.0.1", "{}"}).ok());
  CHECK(events.Verify(0, 0).ok());

  // The attacks, each refused by privilege (42501), not by a trigger the owner could drop.
  for (const char* attack : {
           "UPDATE audit.security_events SET actor = 'mallory'",
           "DELETE FROM audit.security_events",
           "TRUNCATE audit.security_events",
           "ALTER TABLE audit.security_events DISABLE TRIGGER security_events_append_only",
           "DROP TRIGGER security_events_append_only ON audit.security_events",
           "DROP TABLE audit.security_events",
           "SELECT count(*) FROM agents.agents",
           "UPDATE agents.agents SET blocked_reason = 'x'",
           "CREATE TABLE auth.backdoor (x int)",
           "ALTER TABLE auth.users ADD COLUMN backdoor int",
           "INSERT INTO auth.schema_migrations(version) VALUES (100000)",
           "CREATE TABLE public.backdoor (x int)",
           "CREATE TEMP TABLE backdoor (x int)",
       }) {
    INFO(attack);
    CHECK(SqlState(*svc, attack) == "42501");
  }
  // The trail is intact and still verifies under the key.
  CHECK(owner->WithConnection([&](PgConnection& c) { return VerifyAuditChain(c, key); }).ok());
}

TEST_CASE("a service refuses to run as the owner or as a superuser", "[pg][roles]") {
  auto owner = TestPool(1);
  REQUIRE(SecurityEventWriter(*owner, "test", TestVar("REDFLAG_AUDIT_KEY")).Migrate().ok());
  absl::Status as_owner =
      owner->WithConnection([](PgConnection& c) { return RequireLeastPrivilege(c); });
  CHECK(as_owner.code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(as_owner.message()),
             Catch::Contains("redflag_owner may change audit.security_events"));
  auto super = TestPoolAs("postgres", TestVar("REDFLAG_DB_SUPERUSER_PASSWORD"));
  absl::Status as_super =
      super->WithConnection([](PgConnection& c) { return RequireLeastPrivilege(c); });
  CHECK_THAT(std::string(as_super.message()),
             Catch::Contains("postgres is a PostgreSQL superuser"));
  // A schema the migrations have not reached names the fix.
  absl::Status behind =
      owner->WithConnection([](PgConnection& c) { return RequireMigrated(c, "audit", 1000); });
  CHECK(behind.code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(behind.message()), Catch::Contains("run redflag-migrate"));
}
