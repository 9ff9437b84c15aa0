// Staged rollouts in PostgreSQL (tables updates.rollouts and deliveries.stage): creation
// with a publication, status, the operators' actions and the supervisor's evaluation.
//
// Every state change is one transaction that locks the rollout's row, re-reads its state,
// decides, and records the ROLLOUT_* security event in the same transaction: with any
// number of updates replicas evaluating at once, each transition happens and is recorded
// exactly once. Starting a stage turns its HELD deliveries into offers and notifies
// `redflag_updates` ("published:<id>") so every gateway fans the offers out; an abort
// withdraws open and held deliveries and notifies "revoked:<id>" so agents holding an offer
// are sent a revocation. Thread-safe; `pool` and `events` outlive the store.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/actor.h"
#include "common/pg.h"
#include "common/security_events.h"
#include "redflag/v1/updates.pb.h"

namespace redflag::updates {

enum class RolloutAction { kPause, kResume, kAbort, kApprove };

class RolloutStore {
 public:
  RolloutStore(PgPool& pool, const SecurityEventWriter& events) : pool_(pool), events_(events) {}

  // Inside the publication's transaction: the rollout starts ACTIVE at its first stage
  // (recorded as ROLLOUT_STAGE_STARTED by `actor`). `plan` must be valid
  // (ValidateRolloutPlan).
  absl::Status Create(PgConnection& c, const std::string& update_id, const v1::RolloutPlan& plan,
                      const Actor& actor) const;

  // NOT_FOUND when the update has no rollout.
  absl::StatusOr<v1::Rollout> Get(const std::string& update_id);
  // FAILED_PRECONDITION naming the state when the action does not apply to it.
  absl::StatusOr<v1::Rollout> Apply(const std::string& update_id, RolloutAction action,
                                    const Actor& actor, const std::string& reason);
  // The emergency stop and its release; the ids of the rollouts changed.
  absl::StatusOr<std::vector<std::string>> PauseAll(const Actor& actor, const std::string& reason);
  absl::StatusOr<std::vector<std::string>> ResumeAll(const Actor& actor, const std::string& reason);

  // Judges every ACTIVE rollout's current stage and applies the verdict, each under the
  // rollout row's lock, so two replicas judging at once make each transition once. Returns the
  // transitions made.
  absl::StatusOr<int> EvaluateAll();

  // Rollouts not completed or aborted, in id order, at most `limit`, with their status.
  absl::StatusOr<std::vector<v1::Rollout>> Unfinished(int limit);
  // Rollouts per state name, for metrics.
  absl::StatusOr<std::map<std::string, int64_t>> CountByState();

 private:
  PgPool& pool_;
  const SecurityEventWriter& events_;
};

}  // namespace redflag::updates
