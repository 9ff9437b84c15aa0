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
  bool changed = limits_.Apply(s);
  const int interval = s.check_in_interval_seconds();
  if (interval_.exchange(interval, std::memory_order_relaxed) != interval) {
    changed = true;
    LogInfo(absl::StrCat("check-in interval is now ", interval, " s"));
  }
  // Until the first fetch, the limits and the interval are this gateway's environment.
  if (!fetched_once_ && changed) {
    LogWarn(
        "security settings: the stored values replace this gateway's REDFLAG_RATE_LIMIT_* "
        "and REDFLAG_CHECK_IN_INTERVAL_SECONDS (the environment only seeds the first start; "
        "change them with UpdateSecuritySettings)");
  }
  fetched_once_ = true;
}

}  // namespace redflag::gateway
