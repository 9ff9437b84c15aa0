// This gateway's copy of the security settings it applies: the check-in interval (told to
// agents in HelloAck, every CheckInAck and SlowDown) and the edge rate limits (applied to
// EdgeLimits). Fetched from the agents service at each gap in its Watch feed (so once per
// successful reconnect, including the first) and on each SETTINGS_CHANGED event. Until the
// first fetch, and whenever a fetch fails, the last known values stay (this process's
// environment at start). check_in_interval() is a relaxed atomic load: safe and cheap from
// any thread; EdgeLimits guards its own limits.
#pragma once

#include <atomic>

#include "redflag/v1/agents.grpc.pb.h"
#include "services/gateway/rate_limiter.h"

namespace redflag::gateway {

class SettingsFollower {
 public:
  // `limits` must outlive this follower and hold `initial`'s rate limits (EdgeLimits::Create).
  SettingsFollower(v1::AgentsService::StubInterface& agents, EdgeLimits& limits,
                   const v1::SecuritySettings& initial)
      : agents_(agents), limits_(limits), interval_(initial.check_in_interval_seconds()) {}

  // One blocking GetSecuritySettings call (5 s deadline), then applies what it got. Call
  // only from a thread of our own (the Watch feed's), never from a gRPC completion thread;
  // not from two threads at once.
  void Refresh();
  // Applies fetched settings (what Refresh does after its call); values out of range are
  // refused, logged, and the last known value stays.
  void Apply(const v1::SecuritySettings& s);
  int check_in_interval() const { return interval_.load(std::memory_order_relaxed); }

 private:
  v1::AgentsService::StubInterface& agents_;
  EdgeLimits& limits_;
  bool fetched_once_ = false;  // only Refresh/Apply's thread
  std::atomic<int> interval_;
};

}  // namespace redflag::gateway
