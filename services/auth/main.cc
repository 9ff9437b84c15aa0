// redflag-auth: accounts, sessions and registration tokens, served over mTLS.
#include <cstdlib>
#include <functional>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "common/config.h"
#include "common/event_hub.h"
#include "common/jwt.h"
#include "common/pg_listener.h"
#include "common/process.h"
#include "common/runtime.h"
#include "common/status.h"
#include "common/timer_queue.h"
#include "services/auth/password.h"
#include "services/auth/service.h"
#include "services/auth/store.h"

ABSL_FLAG(std::string, listen, "0.0.0.0:9101", "address for the mTLS gRPC server");
ABSL_FLAG(std::string, health, "", "plaintext grpc.health.v1 address for probes (off when empty)");
ABSL_FLAG(std::string, metrics, "0.0.0.0:9201", "address for Prometheus /metrics");

namespace {

absl::StatusOr<redflag::auth::AuthSettings> SettingsFromEnv() {
  redflag::auth::AuthSettings s;
  REDFLAG_ASSIGN_OR_RETURN(int64_t tokens, redflag::Env::Int("REDFLAG_MAX_TOKENS", 100, 1, 100000));
  REDFLAG_ASSIGN_OR_RETURN(int64_t seats, redflag::Env::Int("REDFLAG_MAX_SEATS", 50, 1, 100000));
  s.limits = {static_cast<int>(tokens), static_cast<int>(seats)};
  using redflag::Env;
  // The hard account lock was replaced by per-(account, source) throttling: refuse the old
  // settings rather than silently ignoring them.
  for (const char* old : {"REDFLAG_LOCKOUT_USER_THRESHOLD", "REDFLAG_LOCKOUT_SOURCE_THRESHOLD",
                          "REDFLAG_LOCKOUT_WINDOW_SECONDS", "REDFLAG_LOCKOUT_SECONDS"}) {
    if (std::getenv(old) != nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          old,
          " is no longer read: failed logins are throttled per account and source "
          "(REDFLAG_LOGIN_THROTTLE_*) and per source (REDFLAG_LOGIN_SOURCE_THRESHOLD)"));
    }
  }
  REDFLAG_ASSIGN_OR_RETURN(int64_t account_threshold,
                           Env::Int("REDFLAG_LOGIN_THROTTLE_THRESHOLD", 5, 1, 1000));
  REDFLAG_ASSIGN_OR_RETURN(int64_t source_threshold,
                           Env::Int("REDFLAG_LOGIN_SOURCE_THRESHOLD", 50, 1, 100000));
  REDFLAG_ASSIGN_OR_RETURN(int64_t window,
                           Env::Int("REDFLAG_LOGIN_THROTTLE_WINDOW_SECONDS", 900, 1, 86400));
  REDFLAG_ASSIGN_OR_RETURN(int64_t first,
                           Env::Int("REDFLAG_LOGIN_THROTTLE_FIRST_SECONDS", 15, 1, 86400));
  REDFLAG_ASSIGN_OR_RETURN(int64_t max,
                           Env::Int("REDFLAG_LOGIN_THROTTLE_MAX_SECONDS", 900, 1, 86400));
  if (max < first) {
    return absl::InvalidArgumentError(
        "REDFLAG_LOGIN_THROTTLE_MAX_SECONDS must not be below "
        "REDFLAG_LOGIN_THROTTLE_FIRST_SECONDS");
  }
  REDFLAG_ASSIGN_OR_RETURN(int64_t grace, Env::Int("REDFLAG_REFRESH_GRACE_SECONDS", 60, 0, 3600));
  s.account_source_throttle = {static_cast<int>(account_threshold), absl::Seconds(window),
                               absl::Seconds(first), absl::Seconds(max)};
  s.source_throttle = {static_cast<int>(source_threshold), absl::Seconds(window),
                       absl::Seconds(first), absl::Seconds(max)};
  s.agent_refresh_grace = absl::Seconds(grace);
  return s;
}

int Run() {
  using namespace redflag;
  BlockShutdownSignals();
  absl::StatusOr<std::string> jwt_secret = Env::Secret("REDFLAG_JWT_SECRET", 32);
  if (!jwt_secret.ok()) return ExitWithError("redflag-auth", jwt_secret.status());
  absl::StatusOr<JwtCodec> jwt = JwtCodec::Create(*std::move(jwt_secret));
  if (!jwt.ok()) return ExitWithError("redflag-auth", jwt.status());
  absl::StatusOr<std::string> admin_password = Env::Secret("REDFLAG_ADMIN_PASSWORD", 12);
  if (!admin_password.ok()) return ExitWithError("redflag-auth", admin_password.status());
  absl::StatusOr<auth::AuthSettings> settings = SettingsFromEnv();
  if (!settings.ok()) return ExitWithError("redflag-auth", settings.status());

  absl::StatusOr<ServiceRuntime> rt =
      ServiceRuntime::Start("redflag-auth", absl::GetFlag(FLAGS_listen),
                            absl::GetFlag(FLAGS_metrics), absl::GetFlag(FLAGS_health));
  if (!rt.ok()) return ExitWithError("redflag-auth", rt.status());

  auth::AuthStore store(*rt->pool);
  if (absl::Status s = rt->RequireSchema("auth", auth::AuthStore::Migrations().size()); !s.ok()) {
    return ExitWithError(rt->name, s);
  }
  absl::StatusOr<std::string> admin_hash = auth::HashPassword(*admin_password);
  if (!admin_hash.ok()) return ExitWithError(rt->name, admin_hash.status());
  if (absl::Status s = store.EnsureUser("admin", *admin_hash, "admin"); !s.ok()) {
    return ExitWithError(rt->name, s);
  }
  EventHub hub;
  absl::StatusOr<DbConfig> db = DbConfig::FromEnv();
  if (!db.ok()) return ExitWithError(rt->name, db.status());
  PgListener listener(*db, auth::kSessionsChannel,
                      [&hub](const std::string& payload) { hub.Publish(payload); });
  if (absl::Status s = listener.Start(); !s.ok()) return ExitWithError(rt->name, s);
  auth::AuthServiceImpl service(store, *jwt, *rt->events, rt->metrics->registry(), hub, *settings);
  absl::StatusOr<int64_t> verify_every =
      Env::Int("REDFLAG_AUDIT_VERIFY_SECONDS", 600, 10, 7LL * 24 * 3600);
  if (!verify_every.ok()) return ExitWithError(rt->name, verify_every.status());
  // The audit chain is re-verified periodically; the gauge feeds the AuditChainBroken alert.
  TimerQueue timers;
  std::function<void()> verify = [&] {
    (void)service.VerifyWholeAuditChain();
    timers.RunAfter(absl::Seconds(*verify_every), [&](bool fired) {
      if (fired) verify();
    });
  };
  verify();
  int rc = rt->ServeUntilSignal(&service);
  timers.Stop();  // before `verify`, which the timer thread may be running, is destroyed
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  redflag::ConfigureProcess();
  absl::ParseCommandLine(argc, argv);
  return Run();
}
