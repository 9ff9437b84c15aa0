#include "common/db_roles.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/status.h"

namespace redflag {
namespace {

constexpr char kRunMigrate[] =
    "run redflag-migrate as the owner role first (README \"Database roles\")";

bool PlainIdentifier(const std::string& s) {
  if (s.empty() || s.size() > 63 || !(s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z'))) return false;
  for (char c : s) {
    if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

// The schema's and role's names are checked plain identifiers, so they are spliced as is.
std::string GrantsFor(const ServiceRole& r) {
  return absl::StrReplaceAll(R"sql(
REVOKE ALL ON SCHEMA $s FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA $s FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA $s FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA $s FROM PUBLIC;
GRANT USAGE ON SCHEMA $s TO $r;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA $s TO $r;
REVOKE INSERT, UPDATE, DELETE ON $s.schema_migrations FROM $r;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA $s TO $r;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA $s TO $r;
GRANT USAGE ON SCHEMA audit TO $r;
REVOKE ALL ON audit.security_events FROM $r;
GRANT SELECT, INSERT ON audit.security_events TO $r;
GRANT SELECT ON audit.schema_migrations TO $r;
GRANT USAGE ON SEQUENCE audit.security_events_id_seq TO $r;
)sql",
                             {{"$s", r.schema}, {"$r", r.role}});
}

}  // namespace

absl::Status CheckRoleExists(PgConnection& conn, const std::string& role) {
  if (!PlainIdentifier(role)) {
    return absl::InvalidArgumentError(
        absl::StrCat("role name must be 1-63 of a-z, 0-9, '_', not starting with a digit"));
  }
  static constexpr Statement kRole{"db_role_exists", "SELECT 1 FROM pg_roles WHERE rolname = $1"};
  REDFLAG_ASSIGN_OR_RETURN(PgResult r, conn.Exec(kRole, {role}));
  if (r.Rows() == 0) {
    return absl::NotFoundError(absl::StrCat(
        "PostgreSQL role ", role,
        " does not exist: a superuser creates the roles once (deploy/postgres/bootstrap.sql)"));
  }
  return absl::OkStatus();
}

absl::Status GrantServiceRoles(PgConnection& conn, const std::vector<ServiceRole>& roles) {
  for (const ServiceRole& r : roles) {
    if (!PlainIdentifier(r.schema)) return absl::InvalidArgumentError("bad schema name");
    REDFLAG_RETURN_IF_ERROR(CheckRoleExists(conn, r.role));
  }
  REDFLAG_RETURN_IF_ERROR(
      conn.ExecScript("REVOKE ALL ON SCHEMA audit FROM PUBLIC; "
                      "REVOKE ALL ON ALL TABLES IN SCHEMA audit FROM PUBLIC; "
                      "REVOKE ALL ON ALL FUNCTIONS IN SCHEMA audit FROM PUBLIC"));
  for (const ServiceRole& r : roles) REDFLAG_RETURN_IF_ERROR(conn.ExecScript(GrantsFor(r)));
  // The one read across schemas: the updates service signs the operators' instruction
  // freshness window (agents.security_settings) into every instruction.
  for (const ServiceRole& r : roles) {
    if (r.schema != "updates") continue;
    REDFLAG_RETURN_IF_ERROR(conn.ExecScript(absl::StrReplaceAll(
        "GRANT USAGE ON SCHEMA agents TO $r; GRANT SELECT ON agents.security_settings TO $r;",
        {{"$r", r.role}})));
  }
  return absl::OkStatus();
}

absl::Status RequireMigrated(PgConnection& conn, const std::string& schema, size_t steps) {
  if (!PlainIdentifier(schema)) return absl::InvalidArgumentError("bad schema name");
  absl::StatusOr<int64_t> read = AppliedMigrations(conn, schema);
  if (!read.ok()) {
    std::string why = read.status().code() == absl::StatusCode::kPermissionDenied
                          ? "this role may not read it"
                          : "it has not been created";
    return absl::FailedPreconditionError(
        absl::StrCat("schema ", schema, " is not usable (", why, "): ", kRunMigrate));
  }
  auto applied = static_cast<size_t>(*read);
  if (applied < steps) {
    return absl::FailedPreconditionError(absl::StrCat("schema ", schema, " is at migration ",
                                                      applied, ", this build needs ", steps, ": ",
                                                      kRunMigrate));
  }
  return absl::OkStatus();
}

absl::Status RequireLeastPrivilege(PgConnection& conn) {
  static constexpr Statement kPrivileges{
      "db_own_privileges",
      "SELECT current_user::text, r.rolsuper, "
      "has_table_privilege('audit.security_events', 'UPDATE') OR "
      "has_table_privilege('audit.security_events', 'DELETE') OR "
      "has_table_privilege('audit.security_events', 'TRUNCATE') "
      "FROM pg_roles r WHERE r.rolname = current_user"};
  REDFLAG_ASSIGN_OR_RETURN(PgResult r, conn.Exec(kPrivileges));
  if (r.Rows() != 1) return absl::InternalError("cannot read the connected role");
  const std::string role = r.Text(0, 0);
  if (r.Bool(0, 1)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "REDFLAG_DB_USER ", role,
        " is a PostgreSQL superuser: connect as the service's own role (README \"Database "
        "roles\"); a superuser can rewrite the audit trail and every schema"));
  }
  if (r.Bool(0, 2)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "REDFLAG_DB_USER ", role,
        " may change audit.security_events (it owns it, or was granted UPDATE/DELETE/TRUNCATE): "
        "services must connect as their own role, which redflag-migrate makes insert-only there"));
  }
  return absl::OkStatus();
}

}  // namespace redflag
