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
    LogWarn(absl::StrCat("security settings: fetch failed, keeping a check-in interval of ",
                         check_in_interval(), " s: ", status.error_message()));
    return;
  }
  const int interval = s.check_in_interval_seconds();
  // Validated by the agents service; this only guards against a 0 from a partial reply.
  if (interval < 1 || interval > kMaxCheckInIntervalSeconds) return;
  if (interval_.exchange(interval, std::memory_order_relaxed) != interval) {
    LogInfo(absl::StrCat("check-in interval is now ", interval, " s"));
  }
}

}  // namespace redflag::gateway
