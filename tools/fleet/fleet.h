// A simulated fleet: N SimAgents sharing one TLS credentials object, one timer thread and
// one FleetStats, each agent on its own connection. Start() spreads the agents' starts
// over a ramp; the destructor stops every agent and waits for all their reactors to end.
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "absl/time/time.h"
#include "common/timer_queue.h"
#include "tools/fleet/fleet_stats.h"
#include "tools/fleet/sim_agent.h"

namespace redflag::fleet {

class Fleet {
 public:
  explicit Fleet(FleetOptions options);
  ~Fleet();
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  // Adds `n` agents and starts them, evenly spread over `ramp`.
  void Start(int n, absl::Duration ramp = absl::ZeroDuration());
  // Agents whose current stream has been acknowledged (HelloAck) at or after `since`.
  int ConnectedSince(absl::Time since = absl::InfinitePast());
  int CountIn(SimAgent::State state);
  // Polls until `n` agents are connected; false on timeout.
  bool WaitConnected(int n, absl::Duration timeout);
  // Stops every agent and waits (up to `timeout`) until all their calls have ended.
  void StopAll(absl::Duration timeout = absl::Seconds(30));

  int size() const { return static_cast<int>(agents_.size()); }
  SimAgent& agent(int i) { return *agents_[static_cast<size_t>(i)]; }
  FleetStats& stats() { return stats_; }
  int live_reactors() const { return live_.load(); }

 private:
  FleetOptions options_;
  FleetStats stats_;
  std::atomic<int> live_{0};
  TimerQueue timers_;
  FleetContext ctx_;
  std::vector<std::unique_ptr<SimAgent>> agents_;
  bool stopped_ = false;
};

}  // namespace redflag::fleet
