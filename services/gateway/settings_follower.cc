#include "services/gateway/settings_follower.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/security_settings.h"

namespace redflag::gateway {

void SettingsFollower::Refresh() {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::SecuritySettings s;
  grpc::Status status = agents_.GetSecuritySettings(&ctx, v1::GetSecuritySettingsRequest(), &s);
  if (!status.ok()) {
    LogWarn(
        absl::StrCat("security settings: fetch failed, keeping the last values (check-in "
                     "interval ",
                     check_in_interval(), " s): ", status.error_message()));
    return;
  }
  Apply(s);
}

void SettingsFollower::Apply(const v1::SecuritySettings& s) {
  // Validated by the agents service; this guards against a partial or older reply.
  if (absl::Status valid = ValidateSecuritySettings(s); !valid.ok()) {
    LogWarn(
        absl::StrCat("security settings: refused what the agents service sent, keeping "
                     "the last values: ",
                     valid.message()));
    return;
  }
  if (!fetched_once_) {
    fetched_once_ = true;
    const bool differs =
        RateLimitText(s.registration_rate_limit()) !=
            RateLimitText(initial_.registration_rate_limit()) ||
        RateLimitText(s.login_rate_limit()) != RateLimitText(initial_.login_rate_limit()) ||
        RateLimitText(s.check_in_rate_limit()) != RateLimitText(initial_.check_in_rate_limit()) ||
        RateLimitText(s.operator_write_rate_limit()) !=
            RateLimitText(initial_.operator_write_rate_limit()) ||
        s.check_in_interval_seconds() != initial_.check_in_interval_seconds();
    if (differs) {
      LogWarn(
          "security settings: the stored values replace this gateway's REDFLAG_RATE_LIMIT_* "
          "and REDFLAG_CHECK_IN_INTERVAL_SECONDS (the environment only seeds the first start; "
          "change them with UpdateSecuritySettings)");
    }
  }
  limits_.Apply(s);
  const int interval = s.check_in_interval_seconds();
  if (interval_.exchange(interval, std::memory_order_relaxed) != interval) {
    LogInfo(absl::StrCat("check-in interval is now ", interval, " s"));
  }
}

}  // namespace redflag::gateway
