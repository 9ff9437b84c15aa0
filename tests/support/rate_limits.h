// Edge rate limits for one end-to-end test: they are a fleet-wide security setting, so a test
// that needs a tight limit sets it through UpdateSecuritySettings (as an admin would), waits
// until the gateways it names have applied it, and puts the previous values back when it
// ends, however it ends, waiting again so the next test meets the suite's limits. Tests in
// one e2e process run one at a time, so no other test sees the tight limit.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "redflag/v1/agents.pb.h"

namespace redflag::testing {

class ScopedRateLimits {
 public:
  // `limits`: group ("registration", "login", "check_in", "operator_writes") -> "RATE:BURST".
  // `gateway_metrics_ports`: gateways (besides the shared one) that must apply them.
  ScopedRateLimits(const std::map<std::string, std::string>& limits,
                   std::vector<int> gateway_metrics_ports);
  ~ScopedRateLimits();
  ScopedRateLimits(const ScopedRateLimits&) = delete;
  ScopedRateLimits& operator=(const ScopedRateLimits&) = delete;

 private:
  // Puts `before_` back and waits for the shared gateway to apply it; warns if it could not.
  void Restore();
  std::vector<int> gateways_;
  v1::SecuritySettings before_;
};

// Waits until every gateway publishes `want` (group -> "RATE:BURST", as RateLimitText
// writes it); "" then, else what a gateway published instead when `timeout` ran out.
std::string WaitForPublishedRateLimits(const std::vector<int>& gateway_metrics_ports,
                                       const std::map<std::string, std::string>& want,
                                       absl::Duration timeout = absl::Seconds(20));

// The limit a gateway publishes for `group` on its metrics endpoint ("RATE:BURST", six
// significant digits each), or "" when it publishes none.
std::string PublishedRateLimit(int metrics_port, const std::string& group);

}  // namespace redflag::testing
