#include "services/updates/rollout_supervisor.h"

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"

namespace redflag::updates {

RolloutSupervisor::RolloutSupervisor(RolloutStore& store, prometheus::Registry& registry,
                                     absl::Duration interval)
    : store_(store),
      interval_(interval),
      by_state_(prometheus::BuildGauge()
                    .Name("redflag_rollouts")
                    .Help("Staged rollouts per state (ACTIVE, WAITING_APPROVAL, PAUSED, HALTED, "
                          "ABORTED, COMPLETED)")
                    .Register(registry)),
      transitions_(prometheus::BuildCounter()
                       .Name("redflag_rollout_transitions_total")
                       .Help("Rollout stage starts, halts, approvals awaited and completions "
                             "decided by this replica's supervisor")
                       .Register(registry)
                       .Add({})),
      stage_members_(prometheus::BuildGauge()
                         .Name("redflag_rollout_stage_members")
                         .Help("Members of each stage of unfinished rollouts, by delivery state")
                         .Register(registry)),
      current_stage_(prometheus::BuildGauge()
                         .Name("redflag_rollout_current_stage")
                         .Help("The stage (1-based) each unfinished rollout is offering")
                         .Register(registry)) {
  for (v1::RolloutState s : {v1::ROLLOUT_ACTIVE, v1::ROLLOUT_WAITING_APPROVAL, v1::ROLLOUT_PAUSED,
                             v1::ROLLOUT_HALTED, v1::ROLLOUT_ABORTED, v1::ROLLOUT_COMPLETED}) {
    by_state_.Add({{"state", v1::RolloutState_Name(s).substr(sizeof("ROLLOUT_") - 1)}});
  }
  thread_ = std::thread([this] { Loop(); });
}

RolloutSupervisor::~RolloutSupervisor() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void RolloutSupervisor::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    lock.unlock();
    if (absl::Status s = RunOnce(); !s.ok()) {
      LogWarn(absl::StrCat("rollout supervisor: round failed, retrying in ",
                           absl::FormatDuration(interval_), ": ", s.ToString()));
    }
    lock.lock();
    cv_.wait_for(lock, absl::ToChronoMilliseconds(interval_), [this] { return stopping_; });
  }
}

absl::Status RolloutSupervisor::RunOnce() {
  std::lock_guard<std::mutex> round(round_mu_);
  REDFLAG_ASSIGN_OR_RETURN(int changed, store_.EvaluateAll());
  transitions_.Increment(changed);
  return RefreshMetrics();
}

absl::Status RolloutSupervisor::RefreshMetrics() {
  REDFLAG_ASSIGN_OR_RETURN(auto counts, store_.CountByState());
  for (v1::RolloutState s : {v1::ROLLOUT_ACTIVE, v1::ROLLOUT_WAITING_APPROVAL, v1::ROLLOUT_PAUSED,
                             v1::ROLLOUT_HALTED, v1::ROLLOUT_ABORTED, v1::ROLLOUT_COMPLETED}) {
    std::string name = v1::RolloutState_Name(s).substr(sizeof("ROLLOUT_") - 1);
    by_state_.Add({{"state", name}}).Set(static_cast<double>(counts[name]));
  }
  REDFLAG_ASSIGN_OR_RETURN(std::vector<v1::Rollout> live, store_.Unfinished(kMaxTracked));
  std::map<std::map<std::string, std::string>, prometheus::Gauge*> stage_series;
  std::map<std::string, prometheus::Gauge*> current_series;
  for (const v1::Rollout& r : live) {
    prometheus::Gauge& cur = current_stage_.Add({{"update", r.update_id()}});
    cur.Set(r.current_stage() + 1);
    current_series[r.update_id()] = &cur;
    for (const v1::RolloutStageStatus& st : r.stages()) {
      for (const auto& [state, n] : st.counts()) {
        std::map<std::string, std::string> labels{
            {"update", r.update_id()}, {"stage", absl::StrCat(st.index() + 1)}, {"state", state}};
        prometheus::Gauge& g = stage_members_.Add(labels);
        g.Set(static_cast<double>(n));
        stage_series[labels] = &g;
      }
    }
  }
  // Series of rollouts that finished (or states no member is in any more) go away.
  for (const auto& [labels, g] : stage_series_) {
    if (!stage_series.count(labels)) stage_members_.Remove(g);
  }
  for (const auto& [id, g] : current_series_) {
    if (!current_series.count(id)) current_stage_.Remove(g);
  }
  stage_series_ = std::move(stage_series);
  current_series_ = std::move(current_series);
  return absl::OkStatus();
}

}  // namespace redflag::updates
