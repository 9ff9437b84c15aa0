// The updates service's rollout supervisor: a thread that, every `interval`, judges each
// ACTIVE rollout (RolloutStore::EvaluateAll: advance, wait for approval, complete or halt)
// and refreshes the rollout metrics. Every replica runs one; PostgreSQL's row locks make
// each transition happen once. A failed round (database away) is logged and retried at the
// next tick. The thread starts in the constructor and stops, finishing its round, in the
// destructor; the store and registry outlive the supervisor.
#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "absl/time/time.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"
#include "services/updates/rollouts.h"

namespace redflag::updates {

class RolloutSupervisor {
 public:
  // Metrics: redflag_rollouts{state} (rollouts per state, every state exported),
  // redflag_rollout_transitions_total (made by this replica), and for rollouts not yet
  // completed or aborted (at most kMaxTracked) redflag_rollout_stage_members{update,stage,
  // state} and redflag_rollout_current_stage{update} (1-based) for the dashboard.
  RolloutSupervisor(RolloutStore& store, prometheus::Registry& registry, absl::Duration interval);
  ~RolloutSupervisor();
  RolloutSupervisor(const RolloutSupervisor&) = delete;
  RolloutSupervisor& operator=(const RolloutSupervisor&) = delete;

  static constexpr int kMaxTracked = 20;

  // One round now (also what the thread runs): judge, then refresh the metrics.
  absl::Status RunOnce();

 private:
  void Loop();
  absl::Status RefreshMetrics();

  RolloutStore& store_;
  const absl::Duration interval_;
  prometheus::Family<prometheus::Gauge>& by_state_;
  prometheus::Counter& transitions_;
  prometheus::Family<prometheus::Gauge>& stage_members_;
  prometheus::Family<prometheus::Gauge>& current_stage_;
  std::map<std::map<std::string, std::string>, prometheus::Gauge*> stage_series_;
  std::map<std::string, prometheus::Gauge*> current_series_;
  std::mutex round_mu_;  // one round at a time (the thread and RunOnce)
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace redflag::updates
