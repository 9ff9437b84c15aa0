// redflag-agents: agent registry, machine binding and version policy, over mTLS.
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "common/config.h"
#include "common/event_hub.h"
#include "common/pg_listener.h"
#include "common/process.h"
#include "common/runtime.h"
#include "common/security_settings.h"
#include "common/status.h"
#include "services/agents/service.h"
#include "services/agents/store.h"

ABSL_FLAG(std::string, listen, "0.0.0.0:9102", "address for the mTLS gRPC server");
ABSL_FLAG(std::string, health, "", "plaintext grpc.health.v1 address for probes (off when empty)");
ABSL_FLAG(std::string, metrics, "0.0.0.0:9202", "address for Prometheus /metrics");

namespace {

int Run() {
  using namespace redflag;
  BlockShutdownSignals();
  // The environment's values are the initial ones; operators change them with
  // UpdateSecuritySettings, and the stored values win from then on.
  absl::StatusOr<v1::SecuritySettings> initial = SecuritySettingsFromEnv();
  if (!initial.ok()) return ExitWithError("redflag-agents", initial.status());
  absl::StatusOr<ServiceRuntime> rt =
      ServiceRuntime::Start("redflag-agents", absl::GetFlag(FLAGS_listen),
                            absl::GetFlag(FLAGS_metrics), absl::GetFlag(FLAGS_health));
  if (!rt.ok()) return ExitWithError("redflag-agents", rt.status());
  agents::AgentStore store(*rt->pool);
  if (absl::Status s = rt->RequireSchema("agents", agents::AgentStore::Migrations().size());
      !s.ok()) {
    return ExitWithError(rt->name, s);
  }
  EventHub hub;
  absl::StatusOr<DbConfig> db = DbConfig::FromEnv();
  PgListener listener(*db, agents::kAgentsChannel,
                      [&hub](const std::string& payload) { hub.Publish(payload); });
  if (absl::Status s = listener.Start(); !s.ok()) return ExitWithError(rt->name, s);
  SecuritySettingsStore settings_store(*rt->pool);
  if (absl::Status s = settings_store.Seed(*initial); !s.ok()) return ExitWithError(rt->name, s);
  LiveSecuritySettings settings(settings_store, *initial);
  // Gateways learn of a change through the Watch feed (SETTINGS_CHANGED) and fetch it.
  if (absl::Status s = settings.Start(*db, [&hub] { hub.Publish("settings:"); }); !s.ok()) {
    return ExitWithError(rt->name, s);
  }
  agents::AgentsServiceImpl service(store, *rt->events, rt->metrics->registry(), settings,
                                    settings_store, hub);
  return rt->ServeUntilSignal(&service);
}

}  // namespace

int main(int argc, char** argv) {
  redflag::ConfigureProcess();
  absl::ParseCommandLine(argc, argv);
  return Run();
}
