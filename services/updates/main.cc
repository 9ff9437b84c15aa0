// redflag-updates: the Ed25519 key ring and instruction signing, over mTLS.
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "common/config.h"
#include "common/crypto.h"
#include "common/event_hub.h"
#include "common/pg_listener.h"
#include "common/process.h"
#include "common/runtime.h"
#include "common/security_settings.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"
#include "services/updates/key_ring.h"
#include "services/updates/rollout_supervisor.h"
#include "services/updates/schema.h"
#include "services/updates/service.h"
#include "services/updates/store.h"

ABSL_FLAG(std::string, listen, "0.0.0.0:9103", "address for the mTLS gRPC server");
ABSL_FLAG(std::string, health, "", "plaintext grpc.health.v1 address for probes (off when empty)");
ABSL_FLAG(std::string, metrics, "0.0.0.0:9203", "address for Prometheus /metrics");

namespace {

int Run() {
  using namespace redflag;
  BlockShutdownSignals();
  if (absl::Status s = InitCrypto(); !s.ok()) return ExitWithError("redflag-updates", s);
  absl::StatusOr<std::string> seed = Env::HexSecret("REDFLAG_SIGNING_PRIVATE_KEY", 64);
  if (!seed.ok()) return ExitWithError("redflag-updates", seed.status());
  absl::StatusOr<SigningKey> key = SigningKey::FromSeed(*seed);
  sodium_memzero(seed->data(), seed->size());
  if (!key.ok()) return ExitWithError("redflag-updates", key.status());
  std::optional<SigningKey> previous;
  if (!Env::Optional("REDFLAG_PREVIOUS_SIGNING_PRIVATE_KEY", "").empty()) {
    absl::StatusOr<std::string> old_seed =
        Env::HexSecret("REDFLAG_PREVIOUS_SIGNING_PRIVATE_KEY", 64);
    if (!old_seed.ok()) return ExitWithError("redflag-updates", old_seed.status());
    absl::StatusOr<SigningKey> old_key = SigningKey::FromSeed(*old_seed);
    sodium_memzero(old_seed->data(), old_seed->size());
    if (!old_key.ok()) return ExitWithError("redflag-updates", old_key.status());
    previous = *std::move(old_key);
  }
  absl::StatusOr<int64_t> grace =
      Env::Int("REDFLAG_KEY_GRACE_SECONDS", 7LL * 24 * 3600, 0, 365LL * 24 * 3600);
  if (!grace.ok()) return ExitWithError("redflag-updates", grace.status());

  absl::StatusOr<ServiceRuntime> rt =
      ServiceRuntime::Start("redflag-updates", absl::GetFlag(FLAGS_listen),
                            absl::GetFlag(FLAGS_metrics), absl::GetFlag(FLAGS_health));
  if (!rt.ok()) return ExitWithError("redflag-updates", rt.status());
  absl::StatusOr<int64_t> max_bytes =
      Env::Int("REDFLAG_MAX_PACKAGE_BYTES", 512LL << 20, 1, 8LL << 30);
  if (!max_bytes.ok()) return ExitWithError(rt->name, max_bytes.status());
  if (absl::Status s = rt->RequireSchema("updates", updates::UpdatesMigrations().size()); !s.ok()) {
    return ExitWithError(rt->name, s);
  }
  updates::KeyRing ring(*rt->pool, *std::move(key), std::move(previous));
  if (absl::Status s = ring.Activate(absl::Seconds(*grace)); !s.ok()) {
    return ExitWithError(rt->name, s);
  }
  updates::UpdateStore store(*rt->pool);
  EventHub hub;
  absl::StatusOr<DbConfig> db = DbConfig::FromEnv();
  // Key events from any replica, and a gap in the feed (a payload without a kind), refresh
  // the key ring held in memory.
  PgListener listener(*db, updates::kUpdatesChannel, [&hub, &ring](const std::string& payload) {
    if (payload.rfind("key_", 0) == 0 || payload.find(':') == std::string::npos) {
      ring.Invalidate();
    }
    hub.Publish(payload);
  });
  if (absl::Status s = listener.Start(); !s.ok()) return ExitWithError(rt->name, s);
  absl::StatusOr<int64_t> cache_bytes =
      Env::Int("REDFLAG_PACKAGE_CACHE_BYTES", 256LL << 20, 0, 64LL << 30);
  if (!cache_bytes.ok()) return ExitWithError(rt->name, cache_bytes.status());
  prometheus::Registry& reg = rt->metrics->registry();
  updates::ChunkCache::Metrics cache_metrics{
      &prometheus::BuildCounter()
           .Name("redflag_updates_chunk_cache_hits_total")
           .Help("Download chunks served from memory")
           .Register(reg)
           .Add({}),
      &prometheus::BuildCounter()
           .Name("redflag_updates_chunk_cache_loads_total")
           .Help("Download chunks read from PostgreSQL (once per chunk while cached)")
           .Register(reg)
           .Add({}),
      &prometheus::BuildGauge()
           .Name("redflag_updates_chunk_cache_bytes")
           .Help("Package bytes held in memory for downloads (REDFLAG_PACKAGE_CACHE_BYTES)")
           .Register(reg)
           .Add({})};
  updates::ChunkCache chunks(
      static_cast<size_t>(*cache_bytes),
      [&store](const std::string& update_id, int64_t seq) {
        return store.ReadChunk(update_id, seq);
      },
      cache_metrics);
  absl::StatusOr<int64_t> evaluate_ms = Env::Int("REDFLAG_ROLLOUT_EVALUATE_MS", 2000, 50, 60000);
  if (!evaluate_ms.ok()) return ExitWithError(rt->name, evaluate_ms.status());
  updates::RolloutStore rollouts(*rt->pool, *rt->events);
  updates::RolloutSupervisor supervisor(rollouts, reg, absl::Milliseconds(*evaluate_ms));
  // The operators' settings (agents.security_settings, read-only here); this process's
  // environment only until the agents service has recorded them.
  absl::StatusOr<v1::SecuritySettings> initial = SecuritySettingsFromEnv();
  if (!initial.ok()) return ExitWithError(rt->name, initial.status());
  SecuritySettingsStore settings_store(*rt->pool);
  LiveSecuritySettings settings(settings_store, *initial);
  if (absl::Status s = settings.Start(*db); !s.ok()) return ExitWithError(rt->name, s);
  updates::UpdatesServiceImpl service(ring, store, rollouts, *rt->events, reg, hub, *max_bytes,
                                      chunks, settings);
  return rt->ServeUntilSignal(&service);
}

}  // namespace

int main(int argc, char** argv) {
  redflag::ConfigureProcess();
  absl::ParseCommandLine(argc, argv);
  return Run();
}
