#include "common/runtime.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/config.h"
#include "common/crypto.h"
#include "common/db_roles.h"
#include "common/log.h"
#include "common/status.h"

namespace redflag {

absl::StatusOr<ServiceRuntime> ServiceRuntime::Start(const std::string& name,
                                                     const std::string& listen_address,
                                                     const std::string& metrics_address,
                                                     const std::string& health_address) {
  SetLogComponent(name);
  ServiceRuntime rt;
  rt.name = name;
  rt.listen_address = listen_address;
  rt.health_address = health_address;
  REDFLAG_RETURN_IF_ERROR(InitCrypto());
  REDFLAG_ASSIGN_OR_RETURN(TlsFiles files, TlsFiles::FromEnv());
  REDFLAG_ASSIGN_OR_RETURN(rt.tls, TlsMaterial::Load(files));
  REDFLAG_ASSIGN_OR_RETURN(DbConfig db, DbConfig::FromEnv());
  db.application_name = name;
  REDFLAG_ASSIGN_OR_RETURN(rt.pool, PgPool::Connect(db));
  // The audit trail's seal: a secret the database does not hold (required).
  REDFLAG_ASSIGN_OR_RETURN(std::string audit_key, Env::Secret("REDFLAG_AUDIT_KEY", 32));
  rt.events = std::make_unique<SecurityEventWriter>(*rt.pool, name, std::move(audit_key));
  // Services never migrate: the owner role does (redflag-migrate). Refuse a role that could
  // rewrite the audit trail, and a database the migrations have not reached.
  REDFLAG_RETURN_IF_ERROR(rt.pool->WithConnection([](PgConnection& c) -> absl::Status {
    REDFLAG_RETURN_IF_ERROR(RequireMigrated(c, "audit", SecurityEventWriter::Migrations().size()));
    return RequireLeastPrivilege(c);
  }));
  REDFLAG_ASSIGN_OR_RETURN(rt.metrics, MetricsServer::Start(metrics_address));
  rt.events->ExposeMetrics(rt.metrics->registry());
  return rt;
}

absl::Status ServiceRuntime::RequireSchema(const std::string& schema, size_t steps) {
  return pool->WithConnection([&](PgConnection& c) { return RequireMigrated(c, schema, steps); });
}

int ServiceRuntime::ServeUntilSignal(grpc::Service* service) {
  ServerOptions opts;
  opts.address = listen_address;
  opts.credentials = MutualTlsServerCredentials(tls);
  opts.services = {service};
  opts.metrics = &metrics->registry();
  opts.health_address = health_address;
  int port = 0;
  absl::StatusOr<RunningServer> server = StartServer(opts, &port);
  if (!server.ok()) return ExitWithError(name, server.status());
  LogInfo(absl::StrCat(name, " serving mTLS gRPC on ", listen_address, " (port ", port, ")"));
  WaitForShutdownSignal();
  LogInfo("shutting down");
  server->Shutdown(absl::Seconds(5));
  return 0;
}

int ExitWithError(const std::string& name, const absl::Status& status) {
  std::fprintf(stderr, "%s: %s\n", name.c_str(), status.ToString().c_str());
  return 1;
}

}  // namespace redflag
