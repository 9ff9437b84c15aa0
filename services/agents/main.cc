// redflag-agents: agent registry, machine binding and version policy, over mTLS.
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "common/config.h"
#include "common/event_hub.h"
#include "common/pg_listener.h"
#include "common/process.h"
#include "common/runtime.h"
#include "common/status.h"
#include "services/agents/service.h"
#include "services/agents/store.h"

ABSL_FLAG(std::string, listen, "0.0.0.0:9102", "address for the mTLS gRPC server");
ABSL_FLAG(std::string, health, "", "plaintext grpc.health.v1 address for probes (off when empty)");
ABSL_FLAG(std::string, metrics, "0.0.0.0:9202", "address for Prometheus /metrics");

namespace {

absl::StatusOr<redflag::agents::PolicySettings> SettingsFromEnv() {
  using redflag::Env;
  redflag::agents::PolicySettings s;
  std::string min = Env::Optional("MIN_AGENT_VERSION", "0.1.22");
  absl::StatusOr<redflag::Version> v = redflag::Version::Parse(min);
  if (!v.ok())
    return absl::InvalidArgumentError(absl::StrCat("MIN_AGENT_VERSION: ", v.status().message()));
  s.min_version = *v;
  REDFLAG_ASSIGN_OR_RETURN(int64_t block_at,
                           Env::Int("REDFLAG_BINDING_VIOLATIONS_BEFORE_BLOCK", 3, 1, 1000));
  s.violations_before_block = static_cast<int>(block_at);
  REDFLAG_ASSIGN_OR_RETURN(s.offline_after_seconds,
                           Env::Int("REDFLAG_OFFLINE_AFTER_SECONDS", 300, 10, 30LL * 24 * 3600));
  return s;
}

int Run() {
  using namespace redflag;
  BlockShutdownSignals();
  absl::StatusOr<agents::PolicySettings> settings = SettingsFromEnv();
  if (!settings.ok()) return ExitWithError("redflag-agents", settings.status());
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
  agents::AgentsServiceImpl service(store, *rt->events, rt->metrics->registry(), *settings, hub);
  return rt->ServeUntilSignal(&service);
}

}  // namespace

int main(int argc, char** argv) {
  redflag::ConfigureProcess();
  absl::ParseCommandLine(argc, argv);
  return Run();
}
