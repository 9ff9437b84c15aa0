#include "tests/support/rate_limits.h"

#include <catch2/catch.hpp>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/security_settings.h"
#include "tests/support/cluster.h"

namespace redflag::testing {
namespace {

// The field of `group` in SecuritySettings or UpdateSecuritySettingsRequest (same names).
template <typename Settings>
v1::RateLimitSetting* Field(Settings& s, const std::string& group) {
  if (group == "registration") return s.mutable_registration_rate_limit();
  if (group == "login") return s.mutable_login_rate_limit();
  if (group == "check_in") return s.mutable_check_in_rate_limit();
  if (group == "operator_writes") return s.mutable_operator_write_rate_limit();
  throw std::invalid_argument("unknown rate-limit group " + group);
}

// The value of the sample `metric{group="<group>"}` on the endpoint, or "" when absent.
std::string Sample(const std::string& body, const std::string& metric, const std::string& group) {
  const std::string prefix = absl::StrCat(metric, "{group=\"", group, "\"} ");
  for (absl::string_view line : absl::StrSplit(body, '\n')) {
    if (absl::StartsWith(line, prefix)) return std::string(line.substr(prefix.size()));
  }
  return "";
}

// Updates the settings with `req` and waits until every gateway publishes `want`
// (group -> RATE:BURST); returns what a gateway published instead, or "".
std::string SetAndWait(const v1::UpdateSecuritySettingsRequest& req,
                       const std::map<std::string, std::string>& want,
                       const std::vector<int>& gateways) {
  auto& c = Cluster::Get();
  grpc::ClientContext ctx;
  Cluster::Authorize(ctx, c.AdminToken());
  v1::SecuritySettings out;
  grpc::Status s = c.Operator()->UpdateSecuritySettings(&ctx, req, &out);
  if (!s.ok()) return "UpdateSecuritySettings: " + s.error_message();
  return WaitForPublishedRateLimits(gateways, want);
}

}  // namespace

std::string WaitForPublishedRateLimits(const std::vector<int>& gateway_metrics_ports,
                                       const std::map<std::string, std::string>& want,
                                       absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::string why;
  do {
    why.clear();
    for (int port : gateway_metrics_ports) {
      for (const auto& [group, text] : want) {
        const std::string got = PublishedRateLimit(port, group);
        if (got != text) why = absl::StrCat("gateway :", port, " ", group, " is ", got);
      }
    }
    if (why.empty()) return "";
    absl::SleepFor(absl::Milliseconds(100));
  } while (absl::Now() < deadline);
  return why;
}

std::string PublishedRateLimit(int metrics_port, const std::string& group) {
  const std::string body = HttpGet(metrics_port, "/metrics");
  const std::string rate = Sample(body, "redflag_gateway_rate_limit_per_second", group);
  const std::string burst = Sample(body, "redflag_gateway_rate_limit_burst", group);
  v1::RateLimitSetting limit;
  double v = 0;
  if (!absl::SimpleAtod(rate, &v)) return "";
  limit.set_per_second(v);
  if (!absl::SimpleAtod(burst, &v)) return "";
  limit.set_burst(v);
  return RateLimitText(limit);
}

ScopedRateLimits::ScopedRateLimits(const std::map<std::string, std::string>& limits,
                                   std::vector<int> gateway_metrics_ports)
    : gateways_(std::move(gateway_metrics_ports)) {
  auto& c = Cluster::Get();
  gateways_.push_back(c.metrics_port("gateway"));
  {
    grpc::ClientContext ctx;
    Cluster::Authorize(ctx, c.AdminToken());
    REQUIRE(c.Operator()->GetSecuritySettings(&ctx, {}, &before_).ok());
  }
  v1::UpdateSecuritySettingsRequest req;
  std::map<std::string, std::string> want;
  for (const auto& [group, text] : limits) {
    absl::StatusOr<v1::RateLimitSetting> limit = ParseRateLimit(group, text);
    REQUIRE(limit.ok());
    *Field(req, group) = *limit;
    want[group] = RateLimitText(*limit);
  }
  req.set_reason("e2e: a tight rate limit for one test");
  const std::string why = SetAndWait(req, want, gateways_);
  if (!why.empty()) Restore();  // a constructor that throws gets no destructor
  INFO(why);
  REQUIRE(why.empty());
}

ScopedRateLimits::~ScopedRateLimits() { Restore(); }

void ScopedRateLimits::Restore() {
  v1::SecuritySettings before = before_;
  v1::UpdateSecuritySettingsRequest req;
  std::map<std::string, std::string> want;
  for (const char* group : {"registration", "login", "check_in", "operator_writes"}) {
    *Field(req, group) = *Field(before, group);
    want[group] = RateLimitText(*Field(req, group));
  }
  req.set_reason("e2e: the suite's rate limits again");
  // Not REQUIRE: a destructor must not throw. A failure here shows in the next tests.
  const std::string why = SetAndWait(req, want, {gateways_.back()});
  if (!why.empty()) WARN("rate limits not restored: " << why);
}

}  // namespace redflag::testing
