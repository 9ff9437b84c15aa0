// redflag-gateway: the one public endpoint (TLS) for operators and agents. Reaches the
// internal services over mTLS with its own certificate (identity "gateway").
#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/config.h"
#include "common/crypto.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/process.h"
#include "common/runtime.h"
#include "common/security_settings.h"
#include "common/server.h"
#include "common/timer_queue.h"
#include "common/tls.h"
#include "services/gateway/agent_gateway.h"
#include "services/gateway/fan_out.h"
#include "services/gateway/operator_service.h"

ABSL_FLAG(std::string, listen, "",
          "public address (default REDFLAG_SERVER_HOST:REDFLAG_SERVER_PORT)");
ABSL_FLAG(std::string, health, "", "plaintext grpc.health.v1 address for probes (off when empty)");
ABSL_FLAG(std::string, metrics, "0.0.0.0:9200", "address for Prometheus /metrics");

namespace {

constexpr char kName[] = "redflag-gateway";

int Run() {
  using namespace redflag;
  BlockShutdownSignals();
  SetLogComponent(kName);
  if (absl::Status s = InitCrypto(); !s.ok()) return ExitWithError(kName, s);
  // The public port speaks TLS 1.3 only (security architecture); 1.2 only if asked for.
  std::string min_tls = Env::Optional("REDFLAG_PUBLIC_TLS_MIN_VERSION", "1.3");
  if (min_tls == "1.3") {
    if (absl::Status s = RequireTls13ProcessWide(); !s.ok()) return ExitWithError(kName, s);
  } else if (min_tls != "1.2") {
    return ExitWithError(kName, absl::InvalidArgumentError(
                                    "REDFLAG_PUBLIC_TLS_MIN_VERSION must be 1.3 (default) or 1.2"));
  }
  absl::StatusOr<std::string> secret = Env::Secret("REDFLAG_JWT_SECRET", 32);
  if (!secret.ok()) return ExitWithError(kName, secret.status());
  absl::StatusOr<JwtCodec> jwt = JwtCodec::Create(*std::move(secret));
  if (!jwt.ok()) return ExitWithError(kName, jwt.status());
  absl::StatusOr<TlsFiles> public_files = TlsFiles::FromEnv("REDFLAG_TLS_", false);
  if (!public_files.ok()) return ExitWithError(kName, public_files.status());
  absl::StatusOr<TlsMaterial> public_tls = TlsMaterial::Load(*public_files);
  if (!public_tls.ok()) return ExitWithError(kName, public_tls.status());
  absl::StatusOr<TlsFiles> internal_files = TlsFiles::FromEnv("REDFLAG_INTERNAL_TLS_", true);
  if (!internal_files.ok()) return ExitWithError(kName, internal_files.status());
  absl::StatusOr<TlsMaterial> internal_tls = TlsMaterial::Load(*internal_files);
  if (!internal_tls.ok()) return ExitWithError(kName, internal_tls.status());
  // The security settings this gateway applies (check-in interval, rate limits), from its
  // environment until the agents service's stored values arrive.
  absl::StatusOr<v1::SecuritySettings> initial_settings = SecuritySettingsFromEnv();
  if (!initial_settings.ok()) return ExitWithError(kName, initial_settings.status());
  absl::StatusOr<bool> tls_enabled = Env::Bool("REDFLAG_TLS_ENABLED", true);
  if (!tls_enabled.ok()) return ExitWithError(kName, tls_enabled.status());
  if (!*tls_enabled) {
    return ExitWithError(kName, absl::FailedPreconditionError(
                                    "REDFLAG_TLS_ENABLED=false is not supported: the gateway "
                                    "serves TLS only"));
  }
  std::string listen = absl::GetFlag(FLAGS_listen);
  if (listen.empty()) {
    listen = absl::StrCat(Env::Optional("REDFLAG_SERVER_HOST", "0.0.0.0"), ":",
                          Env::Optional("REDFLAG_SERVER_PORT", "8443"));
  }

  absl::StatusOr<std::unique_ptr<MetricsServer>> metrics =
      MetricsServer::Start(absl::GetFlag(FLAGS_metrics));
  if (!metrics.ok()) return ExitWithError(kName, metrics.status());
  prometheus::Registry& reg = (*metrics)->registry();
  auto& connected = prometheus::BuildGauge()
                        .Name("redflag_gateway_agent_streams")
                        .Help("Agent Connect streams currently open")
                        .Register(reg)
                        .Add({});
  auto& check_ins = prometheus::BuildCounter()
                        .Name("redflag_gateway_check_ins_total")
                        .Help("Check-ins acknowledged to agents")
                        .Register(reg)
                        .Add({});
  auto& check_ins_throttled =
      prometheus::BuildCounter()
          .Name("redflag_gateway_check_ins_throttled_total")
          .Help("Check-ins over the per-agent rate limit, answered with SlowDown (not recorded)")
          .Register(reg)
          .Add({});

  absl::StatusOr<std::unique_ptr<gateway::EdgeLimits>> limits =
      gateway::EdgeLimits::Create(*initial_settings);
  if (!limits.ok()) return ExitWithError(kName, limits.status());
  (*limits)->ExportTo(reg);
  absl::StatusOr<gateway::GateLimits> gate_limits = gateway::GateLimits::FromEnv();
  if (!gate_limits.ok()) return ExitWithError(kName, gate_limits.status());
  absl::StatusOr<gateway::Backends> backends =
      gateway::Backends::Connect(*internal_tls, *gate_limits);
  if (!backends.ok()) return ExitWithError(kName, backends.status());
  gateway::RevokedSessions revoked_sessions;
  auto& revoked_gauge = prometheus::BuildGauge()
                            .Name("redflag_gateway_revoked_sessions")
                            .Help("Revoked sessions whose access tokens this gateway refuses")
                            .Register(reg)
                            .Add({});
  gateway::Authenticator authn(*std::move(jwt), reg, (*limits)->bad_tokens, revoked_sessions,
                               gateway::AuthFailureReporter(*backends));
  // Logout and refresh-token reuse reach every replica within a second (auth's NOTIFY feed).
  auto session_events = std::make_unique<gateway::EventWatcher<v1::RevokedSession>>(
      "auth sessions",
      [&](grpc::ClientContext* c) {
        return backends->auth->WatchRevokedSessions(c, v1::WatchRevokedSessionsRequest());
      },
      [&](const v1::RevokedSession& r) {
        revoked_sessions.Add(r.session_id(), absl::FromUnixSeconds(r.forget_after().seconds()));
        revoked_gauge.Set(static_cast<double>(revoked_sessions.size()));
      });  // each Watch starts with a full snapshot
  auto& check_in_retries = prometheus::BuildCounter()
                               .Name("redflag_gateway_check_in_retries_total")
                               .Help(
                                   "Check-ins the agents service could not record yet, by "
                                   "what became of them (retried, dropped: over the limit)")
                               .Register(reg);
  gateway::CheckInBatcher::Metrics batcher_metrics{
      &prometheus::BuildGauge()
           .Name("redflag_gateway_check_ins_waiting_retry")
           .Help("Check-ins held for another attempt while the agents service or its "
                 "database is away")
           .Register(reg)
           .Add({}),
      &check_in_retries.Add({{"result", "retried"}}),
      &check_in_retries.Add({{"result", "dropped"}})};
  auto batcher = std::make_unique<gateway::CheckInBatcher>(
      backends->agents.get(), backends->agents_gate.get(), absl::Milliseconds(50), 1000,
      /*max_held=*/100000, batcher_metrics);
  auto timers = std::make_unique<TimerQueue>();
  auto& instructions_sent = prometheus::BuildCounter()
                                .Name("redflag_gateway_instructions_sent_total")
                                .Help("Signed instructions pushed to agents")
                                .Register(reg)
                                .Add({});
  auto& outcomes_family = prometheus::BuildCounter()
                              .Name("redflag_gateway_agent_outcomes_total")
                              .Help(
                                  "Agents' acks, delivery reports and verify results forwarded "
                                  "to the backends, by result (recorded, retried, dropped)")
                              .Register(reg);
  gateway::OutcomeMetrics outcome_metrics{
      prometheus::BuildGauge()
          .Name("redflag_gateway_agent_outcomes_pending")
          .Help("Agents' outcomes queued or in flight towards the backends")
          .Register(reg)
          .Add({}),
      outcomes_family.Add({{"result", "retried"}}), outcomes_family.Add({{"result", "dropped"}}),
      outcomes_family.Add({{"result", "recorded"}})};
  gateway::StreamRegistry registry;
  // Fetched at the agents feed's first event (a gap) and at every SETTINGS_CHANGED.
  gateway::SettingsFollower settings(*backends->agents, **limits, *initial_settings);
  auto& fetch_rounds = prometheus::BuildCounter()
                           .Name("redflag_gateway_stream_fetch_rounds_total")
                           .Help(
                               "Rounds in which one agent stream fetched what it is owed with "
                               "its own backend calls (not part of a batched fan-out)")
                           .Register(reg)
                           .Add({});
  gateway::StreamDeps deps{
      *backends,         authn,           *batcher,  **limits,  registry,
      *timers,           outcome_metrics, connected, check_ins, check_ins_throttled,
      instructions_sent, fetch_rounds,    settings};
  gateway::OperatorServiceImpl operators(*backends, authn, **limits);
  gateway::AgentGatewayImpl agent_gateway(deps);
  // Registry changes and publications reach the streams this replica holds. A gap in a feed
  // (each Watch starts with one) is a batched resync, as is every update event.
  auto& fan_out_calls = prometheus::BuildCounter()
                            .Name("redflag_gateway_fan_out_calls_total")
                            .Help(
                                "Batched backend calls made for events or gaps in a feed, "
                                "retries included, by feed")
                            .Register(reg);
  auto resync = std::make_unique<gateway::AgentResync>(registry, *backends, *timers,
                                                       &fan_out_calls.Add({{"feed", "agents"}}));
  auto agent_events = std::make_unique<gateway::EventWatcher<v1::AgentEvent>>(
      "agents",
      [&](grpc::ClientContext* c) { return backends->agents->Watch(c, v1::WatchAgentsRequest()); },
      [&registry, &resync, &settings](const v1::AgentEvent& ev) {
        // On this feed's own thread: a gap (missed changes) or a change refetches settings.
        if (ev.kind() == v1::AgentEvent::SETTINGS_CHANGED || ev.agent_id().empty()) {
          settings.Refresh();
        }
        gateway::DispatchAgentEvent(registry, ev, [&resync] { resync->Trigger(); });
      });
  auto fan_out = std::make_unique<gateway::UpdateFanOut>(registry, *backends, *timers,
                                                         &fan_out_calls.Add({{"feed", "updates"}}));
  auto update_events = std::make_unique<gateway::EventWatcher<v1::UpdateEvent>>(
      "updates",
      [&](grpc::ClientContext* c) {
        return backends->updates->Watch(c, v1::WatchUpdatesRequest());
      },
      [&fan_out](const v1::UpdateEvent&) { fan_out->Trigger(); });

  ServerOptions opts;
  opts.address = listen;
  opts.credentials = TlsServerCredentials(*public_tls);
  opts.services = {&operators, &agent_gateway};
  opts.memory_quota_bytes = 1024u << 20;
  opts.metrics = &reg;
  opts.health_address = absl::GetFlag(FLAGS_health);
  int port = 0;
  absl::StatusOr<RunningServer> server = StartServer(opts, &port);
  if (!server.ok()) return ExitWithError(kName, server.status());
  LogInfo(absl::StrCat("gateway serving TLS gRPC on ", listen, " (port ", port, ")"));
  WaitForShutdownSignal();
  LogInfo("shutting down");
  // In order: stop accepting and end every stream (returns once all reactors are done);
  // stop the event feeds; flush queued check-ins; cancel scheduled retries (each releases
  // what it held); wait for the backend calls still in flight, whose callbacks use what is
  // destroyed below; only then destroy the server, the channels and the rest.
  server->Shutdown(absl::Seconds(5));
  agent_events.reset();
  update_events.reset();
  session_events.reset();
  batcher.reset();
  timers->Stop();
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  for (gateway::BackendGate* g : backends->gates()) {
    while ((g->in_flight() > 0 || g->queued() > 0) && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(10));
    }
  }
  // A gate frees its slot when our callback returns; gRPC releases the call (and its
  // reference on the channel's callback queue) just after. Destroying a channel before that
  // makes gRPC 1.51 free the queue twice (seen under ASan), so give it a moment.
  absl::SleepFor(absl::Milliseconds(200));
  server->server.reset();
  server->health.reset();
  fan_out.reset();
  resync.reset();
  timers.reset();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  redflag::ConfigureProcess();
  absl::ParseCommandLine(argc, argv);
  return Run();
}
