#include "common/security_settings.h"

#include <map>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/log.h"
#include "common/status.h"
#include "common/version.h"

namespace redflag {
namespace {

constexpr Statement kSeed{
    "settings_seed",
    "INSERT INTO agents.security_settings (name, value, updated_by) "
    "SELECT n, v, 'environment' FROM unnest($1::text[], $2::text[]) AS t(n, v) "
    "ON CONFLICT (name) DO NOTHING"};
constexpr Statement kLoad{
    "settings_load",
    "SELECT name, value, updated_by, (extract(epoch FROM updated_at))::bigint "
    "FROM agents.security_settings"};
constexpr Statement kLock{"settings_lock",
                          "LOCK TABLE agents.security_settings IN SHARE ROW EXCLUSIVE MODE"};
constexpr Statement kUpsert{
    "settings_upsert",
    "INSERT INTO agents.security_settings (name, value, updated_by, updated_at) "
    "VALUES ($1, $2, $3, now()) ON CONFLICT (name) DO UPDATE "
    "SET value = EXCLUDED.value, updated_by = EXCLUDED.updated_by, updated_at = now()"};

absl::Status Range(const char* field, int64_t v, int64_t lo, int64_t hi) {
  if (v >= lo && v <= hi) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, " must be ", lo, "..", hi, " (got ", v, ")"));
}

// The rate limits, each with its row name, variable and default, and its accessors.
struct RateLimitField {
  const char* name;
  const char* variable;
  const char* fallback;
  const v1::RateLimitSetting& (v1::SecuritySettings::*get)() const;
  v1::RateLimitSetting* (v1::SecuritySettings::*mut)();
  bool (v1::UpdateSecuritySettingsRequest::*requested)() const;
  const v1::RateLimitSetting& (v1::UpdateSecuritySettingsRequest::*request)() const;
};

#define REDFLAG_RATE_LIMIT_FIELD(field, variable, fallback)                                      \
  RateLimitField {                                                                               \
#field, variable, fallback, &v1::SecuritySettings::field,                                    \
        &v1::SecuritySettings::mutable_##field, &v1::UpdateSecuritySettingsRequest::has_##field, \
        &v1::UpdateSecuritySettingsRequest::field                                                \
  }
const RateLimitField kRateLimits[] = {
    REDFLAG_RATE_LIMIT_FIELD(registration_rate_limit, "REDFLAG_RATE_LIMIT_REGISTRATION", "20:100"),
    REDFLAG_RATE_LIMIT_FIELD(login_rate_limit, "REDFLAG_RATE_LIMIT_LOGIN", "2:20"),
    REDFLAG_RATE_LIMIT_FIELD(check_in_rate_limit, "REDFLAG_RATE_LIMIT_CHECK_IN", "1:10"),
    REDFLAG_RATE_LIMIT_FIELD(operator_write_rate_limit, "REDFLAG_RATE_LIMIT_OPERATOR_WRITES",
                             "10:50"),
};
#undef REDFLAG_RATE_LIMIT_FIELD

// name -> value text, in one place so storing and loading agree.
std::map<std::string, std::string> AsRows(const v1::SecuritySettings& s) {
  std::map<std::string, std::string> rows = {
      {"instruction_freshness_seconds", absl::StrCat(s.instruction_freshness_seconds())},
      {"binding_violations_before_block", absl::StrCat(s.binding_violations_before_block())},
      {"min_agent_version", s.min_agent_version()},
      {"offline_after_seconds", absl::StrCat(s.offline_after_seconds())},
      {"check_in_interval_seconds", absl::StrCat(s.check_in_interval_seconds())}};
  for (const RateLimitField& f : kRateLimits) rows[f.name] = RateLimitText((s.*f.get)());
  return rows;
}

// Sets one field from its stored text; a row that does not parse is DATA_LOSS.
absl::Status SetFromRow(v1::SecuritySettings& s, const std::string& name,
                        const std::string& value) {
  for (const RateLimitField& f : kRateLimits) {
    if (name != f.name) continue;
    absl::StatusOr<v1::RateLimitSetting> limit = ParseRateLimit(name, value);
    if (!limit.ok()) return absl::DataLossError(absl::StrCat("stored ", limit.status().message()));
    *(s.*f.mut)() = *limit;
    return absl::OkStatus();
  }
  int64_t n = 0;
  const bool numeric = absl::SimpleAtoi(value, &n);
  if (name == "min_agent_version") {
    s.set_min_agent_version(value);
    return absl::OkStatus();
  }
  if (!numeric) return absl::DataLossError(absl::StrCat("setting ", name, " is not a number"));
  if (name == "instruction_freshness_seconds")
    s.set_instruction_freshness_seconds(static_cast<int32_t>(n));
  if (name == "binding_violations_before_block")
    s.set_binding_violations_before_block(static_cast<int32_t>(n));
  if (name == "offline_after_seconds") s.set_offline_after_seconds(n);
  if (name == "check_in_interval_seconds") s.set_check_in_interval_seconds(static_cast<int32_t>(n));
  return absl::OkStatus();  // an unknown name (a newer release's setting) is left alone
}

}  // namespace

absl::Status ValidateRateLimit(const std::string& what, const v1::RateLimitSetting& limit) {
  if (limit.per_second() >= kMinRatePerSecond && limit.per_second() <= kMaxRate &&
      limit.burst() >= 1 && limit.burst() <= kMaxRate) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(what, " must have a rate of ", kMinRatePerSecond,
                                                 "..", kMaxRate, " per second and a burst of 1..",
                                                 kMaxRate, " (got ", RateLimitText(limit), ")"));
}

absl::StatusOr<v1::RateLimitSetting> ParseRateLimit(const std::string& what,
                                                    const std::string& text) {
  std::vector<std::string> parts = absl::StrSplit(text, ':');
  double rate = 0, burst = 0;
  if (parts.size() != 2 || !absl::SimpleAtod(parts[0], &rate) ||
      !absl::SimpleAtod(parts[1], &burst)) {
    return absl::InvalidArgumentError(absl::StrCat(what, " must be RATE:BURST (e.g. 2:20), got \"",
                                                   absl::CHexEscape(text), "\""));
  }
  v1::RateLimitSetting limit;
  limit.set_per_second(rate);
  limit.set_burst(burst);
  REDFLAG_RETURN_IF_ERROR(ValidateRateLimit(what, limit));
  return limit;
}

std::string RateLimitText(const v1::RateLimitSetting& limit) {
  return absl::StrCat(limit.per_second(), ":", limit.burst());
}

absl::StatusOr<v1::SecuritySettings> SecuritySettingsFromEnv() {
  v1::SecuritySettings s;
  REDFLAG_ASSIGN_OR_RETURN(
      int64_t fresh, Env::Int("REDFLAG_INSTRUCTION_FRESHNESS_SECONDS", kDefaultFreshnessSeconds,
                              kMinFreshnessSeconds, kMaxFreshnessSeconds));
  s.set_instruction_freshness_seconds(static_cast<int32_t>(fresh));
  REDFLAG_ASSIGN_OR_RETURN(int64_t block_at, Env::Int("REDFLAG_BINDING_VIOLATIONS_BEFORE_BLOCK", 3,
                                                      1, kMaxViolationsBeforeBlock));
  s.set_binding_violations_before_block(static_cast<int32_t>(block_at));
  std::string min = Env::Optional("MIN_AGENT_VERSION", "0.1.22");
  if (absl::StatusOr<Version> v = Version::Parse(min); !v.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("MIN_AGENT_VERSION: ", v.status().message()));
  }
  s.set_min_agent_version(min);
  REDFLAG_ASSIGN_OR_RETURN(int64_t offline,
                           Env::Int("REDFLAG_OFFLINE_AFTER_SECONDS", 300, kMinOfflineAfterSeconds,
                                    kMaxOfflineAfterSeconds));
  s.set_offline_after_seconds(offline);
  REDFLAG_ASSIGN_OR_RETURN(int64_t interval, Env::Int("REDFLAG_CHECK_IN_INTERVAL_SECONDS", 30, 1,
                                                      kMaxCheckInIntervalSeconds));
  s.set_check_in_interval_seconds(static_cast<int32_t>(interval));
  for (const RateLimitField& f : kRateLimits) {
    REDFLAG_ASSIGN_OR_RETURN(*(s.*f.mut)(),
                             ParseRateLimit(f.variable, Env::Optional(f.variable, f.fallback)));
  }
  s.set_updated_by("environment");
  return s;
}

absl::Status ValidateSecuritySettings(const v1::SecuritySettings& s) {
  REDFLAG_RETURN_IF_ERROR(Range("instruction_freshness_seconds", s.instruction_freshness_seconds(),
                                kMinFreshnessSeconds, kMaxFreshnessSeconds));
  REDFLAG_RETURN_IF_ERROR(Range("binding_violations_before_block",
                                s.binding_violations_before_block(), 1, kMaxViolationsBeforeBlock));
  if (absl::StatusOr<Version> v = Version::Parse(s.min_agent_version()); !v.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("min_agent_version must be a version like 1.2.3: ", v.status().message()));
  }
  REDFLAG_RETURN_IF_ERROR(Range("offline_after_seconds", s.offline_after_seconds(),
                                kMinOfflineAfterSeconds, kMaxOfflineAfterSeconds));
  for (const RateLimitField& f : kRateLimits) {
    REDFLAG_RETURN_IF_ERROR(ValidateRateLimit(f.name, (s.*f.get)()));
  }
  return Range("check_in_interval_seconds", s.check_in_interval_seconds(), 1,
               kMaxCheckInIntervalSeconds);
}

absl::Status SecuritySettingsStore::Seed(const v1::SecuritySettings& initial) {
  std::vector<std::string> names, values;
  for (const auto& [n, v] : AsRows(initial)) {
    names.push_back(n);
    values.push_back(v);
  }
  // Services that started first (with no rows to read) reload on the notification.
  return pool_.InTransaction([&](PgConnection& c) -> absl::Status {
    REDFLAG_RETURN_IF_ERROR(c.Exec(kSeed, {PgTextArray(names), PgTextArray(values)}).status());
    return Notify(c, kSettingsChannel, "seeded");
  });
}

namespace {

absl::StatusOr<v1::SecuritySettings> LoadWith(PgConnection& c, const v1::SecuritySettings& fb) {
  v1::SecuritySettings s = fb;
  REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kLoad, {}));
  int64_t latest = 0;
  for (int i = 0; i < r.Rows(); ++i) {
    REDFLAG_RETURN_IF_ERROR(SetFromRow(s, r.Text(i, 0), r.Text(i, 1)));
    if (r.Int(i, 3) >= latest) {
      latest = r.Int(i, 3);
      s.set_updated_by(r.Text(i, 2));
      s.mutable_updated_at()->set_seconds(latest);
    }
  }
  return s;
}

}  // namespace

absl::StatusOr<v1::SecuritySettings> SecuritySettingsStore::Load(
    const v1::SecuritySettings& fallback) {
  v1::SecuritySettings out;
  REDFLAG_RETURN_IF_ERROR(pool_.WithConnection([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(out, LoadWith(c, fallback));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::SecuritySettings> SecuritySettingsStore::Update(
    const v1::UpdateSecuritySettingsRequest& req, const Actor& actor,
    const SecurityEventWriter& events, const v1::SecuritySettings& fallback) {
  if (req.reason().empty() || req.reason().size() > 500) {
    return absl::InvalidArgumentError(
        "a reason of at most 500 characters is required to change security settings");
  }
  v1::SecuritySettings out;
  REDFLAG_RETURN_IF_ERROR(pool_.InTransaction([&](PgConnection& c) -> absl::Status {
    // One change at a time: each event's "old" is the value the change replaced.
    REDFLAG_RETURN_IF_ERROR(c.Exec(kLock, {}).status());
    REDFLAG_ASSIGN_OR_RETURN(v1::SecuritySettings before, LoadWith(c, fallback));
    v1::SecuritySettings after = before;
    if (req.has_instruction_freshness_seconds()) {
      after.set_instruction_freshness_seconds(req.instruction_freshness_seconds());
    }
    if (req.has_binding_violations_before_block()) {
      after.set_binding_violations_before_block(req.binding_violations_before_block());
    }
    if (req.has_min_agent_version()) after.set_min_agent_version(req.min_agent_version());
    if (req.has_offline_after_seconds()) {
      after.set_offline_after_seconds(req.offline_after_seconds());
    }
    if (req.has_check_in_interval_seconds()) {
      after.set_check_in_interval_seconds(req.check_in_interval_seconds());
    }
    for (const RateLimitField& f : kRateLimits) {
      if ((req.*f.requested)()) *(after.*f.mut)() = (req.*f.request)();
    }
    REDFLAG_RETURN_IF_ERROR(ValidateSecuritySettings(after));
    const auto old_rows = AsRows(before);
    for (const auto& [name, value] : AsRows(after)) {
      if (old_rows.at(name) == value) continue;
      REDFLAG_RETURN_IF_ERROR(c.Exec(kUpsert, {name, value, actor.subject}).status());
      REDFLAG_RETURN_IF_ERROR(events.Record(
          c, {"SECURITY_SETTING_CHANGED", actor.subject, actor.source,
              absl::StrCat("{\"setting\":", JsonQuote(name),
                           ",\"old\":", JsonQuote(old_rows.at(name)), ",\"new\":", JsonQuote(value),
                           ",\"reason\":", JsonQuote(req.reason()), "}")}));
      LogInfo(absl::StrCat("security setting ", name, " changed from ", old_rows.at(name), " to ",
                           value, " by ", actor.subject));
    }
    REDFLAG_RETURN_IF_ERROR(Notify(c, kSettingsChannel, "changed"));
    REDFLAG_ASSIGN_OR_RETURN(out, LoadWith(c, fallback));
    return absl::OkStatus();
  }));
  return out;
}

LiveSecuritySettings::LiveSecuritySettings(SecuritySettingsStore& store,
                                           v1::SecuritySettings fallback)
    : store_(store),
      fallback_(std::move(fallback)),
      current_(std::make_shared<const v1::SecuritySettings>(fallback_)) {}

absl::Status LiveSecuritySettings::Start(const DbConfig& db, std::function<void()> on_change) {
  // Listen first, then load: a change committed in between is seen by one or the other.
  listener_ = std::make_unique<PgListener>(
      db, kSettingsChannel, [this, on_change = std::move(on_change)](const std::string&) {
        if (absl::Status s = Reload(); !s.ok()) {
          LogWarn(absl::StrCat("security settings: reload failed, keeping the last values: ",
                               s.ToString()));
        } else if (on_change) {
          on_change();
        }
      });
  REDFLAG_RETURN_IF_ERROR(listener_->Start());
  return Reload();
}

absl::Status LiveSecuritySettings::Reload() {
  // Serialised, so a slower load never replaces the result of a later one.
  std::lock_guard<std::mutex> reloading(reload_mu_);
  REDFLAG_ASSIGN_OR_RETURN(v1::SecuritySettings s, store_.Load(fallback_));
  Set(std::move(s));
  return absl::OkStatus();
}

std::shared_ptr<const v1::SecuritySettings> LiveSecuritySettings::Get() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

void LiveSecuritySettings::Set(v1::SecuritySettings s) {
  auto next = std::make_shared<const v1::SecuritySettings>(std::move(s));
  std::lock_guard<std::mutex> lock(mu_);
  current_ = std::move(next);
}

}  // namespace redflag
