#include "common/config.h"

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/encoding.h"
#include "common/status.h"

namespace redflag {
namespace {

const char* Lookup(absl::string_view name) { return std::getenv(std::string(name).c_str()); }

}  // namespace

absl::StatusOr<std::string> Env::Required(absl::string_view name) {
  const char* v = Lookup(name);
  if (v == nullptr || *v == '\0') {
    return absl::FailedPreconditionError(absl::StrCat(name, " is not set"));
  }
  return std::string(v);
}

absl::StatusOr<std::string> Env::Secret(absl::string_view name, size_t min_length) {
  REDFLAG_ASSIGN_OR_RETURN(std::string v, Required(name));
  if (v.size() < min_length) {
    return absl::FailedPreconditionError(absl::StrCat(name, " must be at least ", min_length,
                                                      " characters (it has ", v.size(), ")"));
  }
  return v;
}

absl::StatusOr<std::string> Env::HexSecret(absl::string_view name, size_t hex_chars) {
  REDFLAG_ASSIGN_OR_RETURN(std::string v, Required(name));
  if (v.size() != hex_chars) {
    return absl::FailedPreconditionError(absl::StrCat(
        name, " must be exactly ", hex_chars, " hexadecimal characters (it has ", v.size(), ")"));
  }
  absl::StatusOr<std::string> bytes = HexDecode(v);
  if (!bytes.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(name, ": ", bytes.status().message()));
  }
  return bytes;
}

std::string Env::Optional(absl::string_view name, absl::string_view fallback) {
  const char* v = Lookup(name);
  return (v == nullptr || *v == '\0') ? std::string(fallback) : std::string(v);
}

absl::StatusOr<int64_t> Env::Int(absl::string_view name, int64_t fallback, int64_t min,
                                 int64_t max) {
  const char* v = Lookup(name);
  if (v == nullptr || *v == '\0') return fallback;
  int64_t out = 0;
  if (!absl::SimpleAtoi(v, &out)) {
    return absl::InvalidArgumentError(absl::StrCat(name, " must be an integer, got \"", v, "\""));
  }
  if (out < min || out > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " must be between ", min, " and ", max, ", got ", out));
  }
  return out;
}

absl::StatusOr<bool> Env::Bool(absl::string_view name, bool fallback) {
  const char* v = Lookup(name);
  if (v == nullptr || *v == '\0') return fallback;
  std::string s = absl::AsciiStrToLower(v);
  if (s == "true" || s == "1" || s == "yes") return true;
  if (s == "false" || s == "0" || s == "no") return false;
  return absl::InvalidArgumentError(absl::StrCat(name, " must be true or false, got \"", v, "\""));
}

absl::StatusOr<DbConfig> DbConfig::FromEnv() {
  DbConfig c;
  c.host = Env::Optional("REDFLAG_DB_HOST", "127.0.0.1");
  c.port = Env::Optional("REDFLAG_DB_PORT", "5432");
  c.dbname = Env::Optional("REDFLAG_DB_NAME", "redflag");
  // No default: each service has its own role (README "Database roles").
  REDFLAG_ASSIGN_OR_RETURN(c.user, Env::Required("REDFLAG_DB_USER"));
  REDFLAG_ASSIGN_OR_RETURN(c.password, Env::Required("REDFLAG_DB_PASSWORD"));
  c.sslmode = Env::Optional("REDFLAG_DB_SSLMODE", "prefer");
  REDFLAG_ASSIGN_OR_RETURN(int64_t pool, Env::Int("REDFLAG_DB_POOL_SIZE", 8, 1, 256));
  c.pool_size = static_cast<int>(pool);
  return c;
}

absl::StatusOr<TlsFiles> TlsFiles::FromEnv(absl::string_view prefix, bool require_ca) {
  TlsFiles f;
  if (require_ca) {
    REDFLAG_ASSIGN_OR_RETURN(f.ca_file, Env::Required(absl::StrCat(prefix, "CA_FILE")));
  } else {
    f.ca_file = Env::Optional(absl::StrCat(prefix, "CA_FILE"), "");
  }
  REDFLAG_ASSIGN_OR_RETURN(f.cert_file, Env::Required(absl::StrCat(prefix, "CERT_FILE")));
  REDFLAG_ASSIGN_OR_RETURN(f.key_file, Env::Required(absl::StrCat(prefix, "KEY_FILE")));
  return f;
}

}  // namespace redflag
