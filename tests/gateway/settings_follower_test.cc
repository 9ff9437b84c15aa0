// SettingsFollower applies the security settings a gateway enforces (check-in interval, edge
// rate limits) from what the agents service sends, and keeps the last good values when a
// reply is out of range.
#include "services/gateway/settings_follower.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <catch2/catch.hpp>

#include "common/security_settings.h"
#include "prometheus/registry.h"

using namespace redflag;
using namespace redflag::gateway;

namespace {

v1::SecuritySettings Initial() {
  absl::StatusOr<v1::SecuritySettings> s = SecuritySettingsFromEnv();
  REQUIRE(s.ok());
  // The defaults, whatever this process's environment says.
  s->set_check_in_interval_seconds(30);
  *s->mutable_registration_rate_limit() = *ParseRateLimit("registration", "20:100");
  *s->mutable_login_rate_limit() = *ParseRateLimit("login", "2:20");
  *s->mutable_check_in_rate_limit() = *ParseRateLimit("check-in", "1:10");
  return *s;
}

std::string Text(const RateLimiter& l) {
  v1::RateLimitSetting s;
  s.set_per_second(l.limit().per_second);
  s.set_burst(l.limit().burst);
  return RateLimitText(s);
}

}  // namespace

TEST_CASE("the follower applies fetched rate limits and refuses out-of-range ones",
          "[ratelimit][settings]") {
  const v1::SecuritySettings initial = Initial();
  absl::StatusOr<std::unique_ptr<EdgeLimits>> limits = EdgeLimits::Create(initial);
  REQUIRE(limits.ok());
  prometheus::Registry reg;
  auto& rate = prometheus::BuildGauge().Name("rate").Help("r").Register(reg);
  auto& burst = prometheus::BuildGauge().Name("burst").Help("b").Register(reg);
  prometheus::Gauge& login_rate = rate.Add({{"group", "login"}});
  prometheus::Gauge& login_burst = burst.Add({{"group", "login"}});
  (*limits)->login.ExportTo(login_rate, login_burst);
  CHECK(login_rate.Value() == 2);  // the default 2:20
  CHECK(login_burst.Value() == 20);
  // Never called: Apply is what Refresh does with a reply.
  auto stub = v1::AgentsService::NewStub(
      grpc::CreateChannel("localhost:1", grpc::InsecureChannelCredentials()));
  SettingsFollower follower(*stub, **limits, initial);
  CHECK(follower.check_in_interval() == 30);

  v1::SecuritySettings changed = initial;
  changed.mutable_login_rate_limit()->set_per_second(0.5);
  changed.mutable_login_rate_limit()->set_burst(3);
  changed.mutable_check_in_rate_limit()->set_burst(4);
  changed.set_check_in_interval_seconds(7);
  follower.Apply(changed);
  CHECK(Text((*limits)->login) == "0.5:3");
  CHECK(Text((*limits)->check_in) == "1:4");
  CHECK(Text((*limits)->registration) == "20:100");  // unchanged
  CHECK(login_rate.Value() == 0.5);
  CHECK(login_burst.Value() == 3);
  CHECK(follower.check_in_interval() == 7);

  // A reply with a rate of 0 (an older agents service, a partial reply) changes nothing.
  v1::SecuritySettings bad = changed;
  bad.mutable_registration_rate_limit()->set_per_second(0);
  bad.set_check_in_interval_seconds(9);
  follower.Apply(bad);
  CHECK(Text((*limits)->registration) == "20:100");
  CHECK(follower.check_in_interval() == 7);
}
