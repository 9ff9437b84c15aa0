#include "services/gateway/revoked_sessions.h"

#include "absl/strings/str_cat.h"

namespace redflag::gateway {

void RevokedSessions::SweepLocked(absl::Time now) {
  absl::erase_if(forget_after_, [now](const auto& kv) { return kv.second <= now; });
}

void RevokedSessions::Add(const std::string& session_id, absl::Time forget_after, absl::Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  if (forget_after <= now) return;
  if (forget_after_.size() >= max_entries_ && !forget_after_.contains(session_id)) {
    SweepLocked(now);
    if (forget_after_.size() >= max_entries_) {
      // Fail closed: every token issued until now is refused; their holders refresh.
      forget_after_.clear();
      watermark_ = now;
    }
  }
  absl::Time& t = forget_after_[session_id];
  t = std::max(t, forget_after);
}

absl::Status RevokedSessions::Check(const std::string& session_id, absl::Time issued_at,
                                    absl::Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  if (issued_at <= watermark_) {
    return absl::UnauthenticatedError(
        "invalid token: issued before the gateway's revocation list overflowed; refresh it");
  }
  auto it = forget_after_.find(session_id);
  if (it != forget_after_.end() && it->second > now) {
    return absl::UnauthenticatedError("invalid token: session revoked");
  }
  return absl::OkStatus();
}

size_t RevokedSessions::size() {
  std::lock_guard<std::mutex> lock(mu_);
  return forget_after_.size();
}

absl::Time RevokedSessions::watermark() {
  std::lock_guard<std::mutex> lock(mu_);
  return watermark_;
}

}  // namespace redflag::gateway
