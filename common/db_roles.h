// Least privilege in PostgreSQL. Each service connects as its own role with data rights on
// its own schema only and INSERT + SELECT on the audit trail (by GRANT: no trigger a
// superuser could drop is the control); one owner role owns every schema and is used only by
// redflag-migrate, which applies the migrations and then these grants. A service checks at
// start that it was given no more than that. Functions here are stateless; each runs on the
// connection or pool it is given.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/pg.h"

namespace redflag {

// A service's schema and the role it connects as.
struct ServiceRole {
  std::string schema;  // auth, agents, updates
  std::string role;    // e.g. redflag_auth
};

// NOT_FOUND naming the role when it does not exist (roles are made once by a superuser:
// deploy/postgres/bootstrap.sql); INVALID_ARGUMENT for a name that is not a plain identifier.
absl::Status CheckRoleExists(PgConnection& conn, const std::string& role);

// Idempotently sets the privileges of `roles` (run by the owner after migrating): nothing for
// PUBLIC; each role USAGE on its schema, SELECT/INSERT/UPDATE/DELETE on its tables, USAGE on
// its sequences, EXECUTE on its functions, read-only on its schema_migrations; on
// audit.security_events SELECT and INSERT only (UPDATE, DELETE, TRUNCATE revoked).
absl::Status GrantServiceRoles(PgConnection& conn, const std::vector<ServiceRole>& roles);

// FAILED_PRECONDITION unless `schema` has had at least `steps` migrations applied (saying to
// run redflag-migrate). A schema ahead of this build is accepted (rolling upgrades add to it).
absl::Status RequireMigrated(PgConnection& conn, const std::string& schema, size_t steps);

// A service's start-up check of its own connection: FAILED_PRECONDITION when the role is a
// superuser or may UPDATE, DELETE or TRUNCATE the audit trail (the owner role, or a role
// that was granted too much), naming what is wrong and what to do.
absl::Status RequireLeastPrivilege(PgConnection& conn);

}  // namespace redflag
