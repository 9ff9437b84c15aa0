// The start-up sequence shared by the internal services' mains, in the fixed order:
// flags → validated config (fails fast, names what is wrong) → crypto → TLS →
// database pool, its least-privilege check and the audit schema → metrics. The caller adds its
// service and serves.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/metrics.h"
#include "common/pg.h"
#include "common/security_events.h"
#include "common/server.h"
#include "common/tls.h"

namespace redflag {

struct ServiceRuntime {
  std::string name;
  std::string listen_address;
  std::string health_address;
  TlsMaterial tls;
  std::unique_ptr<PgPool> pool;
  std::unique_ptr<SecurityEventWriter> events;
  std::unique_ptr<MetricsServer> metrics;

  // Reads --listen and --metrics flags (already parsed) and REDFLAG_* variables.
  static absl::StatusOr<ServiceRuntime> Start(const std::string& name,
                                              const std::string& listen_address,
                                              const std::string& metrics_address,
                                              const std::string& health_address = "");
  // FAILED_PRECONDITION unless the service's own schema is migrated (by redflag-migrate) to
  // at least `steps`.
  absl::Status RequireSchema(const std::string& schema, size_t steps);
  // Serves `service` with mTLS until SIGINT/SIGTERM; returns the process exit code.
  int ServeUntilSignal(grpc::Service* service);
};

// Prints "<name>: <status>" to stderr and returns 1 (for main's fatal start-up errors).
int ExitWithError(const std::string& name, const absl::Status& status);

}  // namespace redflag
