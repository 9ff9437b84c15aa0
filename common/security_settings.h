// The security settings operators change at run time (SecuritySettings in agents.proto):
// their ranges, their rows in PostgreSQL (agents.security_settings; the agents service
// writes, the updates service may read), and the snapshot each replica keeps current by
// reloading on every NOTIFY of kSettingsChannel.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "common/actor.h"
#include "common/config.h"
#include "common/pg.h"
#include "common/pg_listener.h"
#include "common/security_events.h"
#include "redflag/v1/agents.pb.h"

namespace redflag {

inline constexpr char kSettingsChannel[] = "redflag_settings";
inline constexpr int kMinFreshnessSeconds = 60;
inline constexpr int kMaxFreshnessSeconds = 900;
inline constexpr int kDefaultFreshnessSeconds = 300;
inline constexpr int kMaxViolationsBeforeBlock = 1000;  // from 1
inline constexpr int64_t kMinOfflineAfterSeconds = 10;
inline constexpr int64_t kMaxOfflineAfterSeconds = 30LL * 24 * 3600;
inline constexpr int kMaxCheckInIntervalSeconds = 3600;  // from 1
inline constexpr double kMinRatePerSecond = 0.01;
inline constexpr double kMaxRate = 1e6;  // per second, and burst (from 1)

// "RATE:BURST" (e.g. "2:20") as a RateLimitSetting; INVALID_ARGUMENT naming `what` (a field
// or a variable), the form and the ranges.
absl::StatusOr<v1::RateLimitSetting> ParseRateLimit(const std::string& what,
                                                    const std::string& text);
// INVALID_ARGUMENT naming `what` when a rate or burst is outside its range.
absl::Status ValidateRateLimit(const std::string& what, const v1::RateLimitSetting& limit);
// The "RATE:BURST" form, six significant digits each (how a limit is stored and audited).
std::string RateLimitText(const v1::RateLimitSetting& limit);

// The values this process would start with: each variable named in agents.proto, range
// checked (INVALID_ARGUMENT naming the variable), its default when unset.
absl::StatusOr<v1::SecuritySettings> SecuritySettingsFromEnv();

// INVALID_ARGUMENT naming the first field outside its range, and the range.
absl::Status ValidateSecuritySettings(const v1::SecuritySettings& s);

// The rows, one per setting. Thread-safe (each call takes its own pooled connection).
class SecuritySettingsStore {
 public:
  explicit SecuritySettingsStore(PgPool& pool) : pool_(pool) {}

  // Records `initial` for each setting without a row (by "environment"): the first service
  // start sets them, later starts and other replicas do not overwrite operators' changes.
  absl::Status Seed(const v1::SecuritySettings& initial);
  // What is stored; a setting without a row keeps its value in `fallback`.
  absl::StatusOr<v1::SecuritySettings> Load(const v1::SecuritySettings& fallback);
  // Applies the fields `req` sets, in one transaction with one SECURITY_SETTING_CHANGED event
  // per changed value (old, new, operator, reason) and a NOTIFY; returns what is then in
  // force. INVALID_ARGUMENT for a value out of range or a missing reason.
  absl::StatusOr<v1::SecuritySettings> Update(const v1::UpdateSecuritySettingsRequest& req,
                                              const Actor& actor, const SecurityEventWriter& events,
                                              const v1::SecuritySettings& fallback);

 private:
  PgPool& pool_;
};

// The settings in force in this process. Get() returns the current immutable snapshot (a
// shared pointer taken under a mutex, no copy of the settings): safe from any thread. Start() loads
// once, then a PgListener thread reloads on every notification (and after a lost connection); a
// failed reload keeps the last values and is logged. `on_change`, when set, runs on the listener's
// thread after each successful reload.
class LiveSecuritySettings {
 public:
  LiveSecuritySettings(SecuritySettingsStore& store, v1::SecuritySettings fallback);
  absl::Status Start(const DbConfig& db, std::function<void()> on_change = nullptr);
  std::shared_ptr<const v1::SecuritySettings> Get() const;
  // Replaces the snapshot (after this process's own change, before the notification).
  void Set(v1::SecuritySettings s);
  const v1::SecuritySettings& fallback() const { return fallback_; }

 private:
  absl::Status Reload();
  SecuritySettingsStore& store_;
  const v1::SecuritySettings fallback_;
  std::mutex reload_mu_;   // held across one load and its Set
  mutable std::mutex mu_;  // guards current_
  std::shared_ptr<const v1::SecuritySettings> current_;
  std::unique_ptr<PgListener> listener_;
};

}  // namespace redflag
