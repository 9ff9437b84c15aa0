// redflag-migrate: applies every schema's migrations (audit, auth, agents, updates) and then
// the least-privilege grants, connected as the owner role (REDFLAG_DB_* with REDFLAG_DB_USER
// set to the owner). Services never migrate and refuse to start as the owner; run this once
// per release before the services start (the Helm chart's pre-install/pre-upgrade Job, the
// redflag-migrate.service unit, scripts/dev-up.sh, the test cluster). Safe to run
// concurrently and repeatedly: migrations take an advisory lock and apply once, grants are
// idempotent. Exit 0 when done, 1 with the reason otherwise.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "common/config.h"
#include "common/db_roles.h"
#include "common/log.h"
#include "common/pg.h"
#include "common/security_events.h"
#include "common/status.h"
#include "services/agents/store.h"
#include "services/auth/store.h"
#include "services/updates/schema.h"

ABSL_FLAG(std::string, auth_role, "redflag_auth", "PostgreSQL role redflag-auth connects as");
ABSL_FLAG(std::string, agents_role, "redflag_agents", "role redflag-agents connects as");
ABSL_FLAG(std::string, updates_role, "redflag_updates", "role redflag-updates connects as");

namespace {

absl::Status Run() {
  using namespace redflag;
  REDFLAG_ASSIGN_OR_RETURN(DbConfig db, DbConfig::FromEnv());
  db.pool_size = 1;
  REDFLAG_ASSIGN_OR_RETURN(std::unique_ptr<PgPool> pool, PgPool::Connect(db));
  const std::vector<ServiceRole> roles = {{"auth", absl::GetFlag(FLAGS_auth_role)},
                                          {"agents", absl::GetFlag(FLAGS_agents_role)},
                                          {"updates", absl::GetFlag(FLAGS_updates_role)}};
  // Roles first: a missing one stops the run before anything changes.
  REDFLAG_RETURN_IF_ERROR(pool->WithConnection([&](PgConnection& c) -> absl::Status {
    for (const ServiceRole& r : roles) REDFLAG_RETURN_IF_ERROR(CheckRoleExists(c, r.role));
    return absl::OkStatus();
  }));
  struct Schema {
    const char* name;
    const std::vector<std::string>& steps;
  };
  for (const Schema& s : {Schema{"audit", SecurityEventWriter::Migrations()},
                          Schema{"auth", auth::AuthStore::Migrations()},
                          Schema{"agents", agents::AgentStore::Migrations()},
                          Schema{"updates", updates::UpdatesMigrations()}}) {
    REDFLAG_RETURN_IF_ERROR(ApplyMigrations(*pool, s.name, s.steps));
    LogInfo(absl::StrCat("schema ", s.name, " at migration ", s.steps.size()));
  }
  REDFLAG_RETURN_IF_ERROR(
      pool->InTransaction([&](PgConnection& c) { return GrantServiceRoles(c, roles); }));
  for (const ServiceRole& r : roles) {
    LogInfo(absl::StrCat("role ", r.role, ": data rights on schema ", r.schema,
                         ", insert-only on audit.security_events"));
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "applies RedFlag's database migrations and least-privilege grants; connect as the "
      "owner role with REDFLAG_DB_HOST, _PORT, _NAME, _USER, _PASSWORD, _SSLMODE");
  absl::ParseCommandLine(argc, argv);
  redflag::SetLogComponent("redflag-migrate");
  absl::Status s = Run();
  if (!s.ok()) {
    std::fprintf(stderr, "redflag-migrate: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}
