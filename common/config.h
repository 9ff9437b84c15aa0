// Reads configuration from environment variables with errors that name the variable
// and say what is wrong. Secret values are never echoed back in messages.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace redflag {

class Env {
 public:
  // A required, non-empty value.
  static absl::StatusOr<std::string> Required(absl::string_view name);
  // A required secret of at least `min_length` characters.
  static absl::StatusOr<std::string> Secret(absl::string_view name, size_t min_length);
  // A required secret of exactly `hex_chars` hexadecimal characters, decoded to bytes.
  static absl::StatusOr<std::string> HexSecret(absl::string_view name, size_t hex_chars);
  static std::string Optional(absl::string_view name, absl::string_view fallback);
  // An integer in [min, max]; `fallback` when unset.
  static absl::StatusOr<int64_t> Int(absl::string_view name, int64_t fallback, int64_t min,
                                     int64_t max);
  static absl::StatusOr<bool> Bool(absl::string_view name, bool fallback);
};

// PostgreSQL connection settings (REDFLAG_DB_HOST, _PORT, _NAME, _USER, _PASSWORD, _SSLMODE).
struct DbConfig {
  std::string host;
  std::string port;
  std::string dbname;
  std::string user;
  std::string password;
  std::string sslmode;
  int pool_size = 8;
  // Shown in pg_stat_activity: the service's name, so an operator sees who holds what.
  std::string application_name = "redflag";
  static absl::StatusOr<DbConfig> FromEnv();
};

// Certificates for TLS/mTLS: <prefix>CA_FILE, <prefix>CERT_FILE, <prefix>KEY_FILE, e.g.
// REDFLAG_TLS_CERT_FILE. The CA is optional only for a server that asks for no client cert.
struct TlsFiles {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  static absl::StatusOr<TlsFiles> FromEnv(absl::string_view prefix = "REDFLAG_TLS_",
                                          bool require_ca = true);
};

}  // namespace redflag
