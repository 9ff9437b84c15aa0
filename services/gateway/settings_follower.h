// This gateway's copy of the operators' check-in interval (SecuritySettings), the one
// setting a gateway applies: told to agents in HelloAck, every CheckInAck and SlowDown.
// Fetched from the agents service at each gap in its Watch feed (so once per successful
// reconnect, including the first) and on each SETTINGS_CHANGED event. Until the first fetch,
// and whenever a fetch fails, the last known value stays (REDFLAG_CHECK_IN_INTERVAL_SECONDS
// at start). check_in_interval() is a relaxed atomic load: safe and cheap from any thread.
#pragma once

#include <atomic>

#include "redflag/v1/agents.grpc.pb.h"

namespace redflag::gateway {

class SettingsFollower {
 public:
  SettingsFollower(v1::AgentsService::StubInterface& agents, int initial_interval_seconds)
      : agents_(agents), interval_(initial_interval_seconds) {}

  // One blocking GetSecuritySettings call (5 s deadline). Call only from a thread of our
  // own (the Watch feed's), never from a gRPC completion thread.
  void Refresh();
  int check_in_interval() const { return interval_.load(std::memory_order_relaxed); }

 private:
  v1::AgentsService::StubInterface& agents_;
  std::atomic<int> interval_;
};

}  // namespace redflag::gateway
