// A staged rollout's plan: validation of what an operator sends with a publication, and the
// one rule that places an agent in a stage. Pure functions with no state: safe from any
// thread, and the same answer on every replica and at every call.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "redflag/v1/updates.pb.h"

namespace redflag::updates {

inline constexpr int kMaxRolloutStages = 10;
inline constexpr int kMaxStageAgentIds = 1000;
inline constexpr int kMaxSoakSeconds = 7 * 24 * 3600;

// INVALID_ARGUMENT naming the stage and field for anything outside what updates.proto
// documents for RolloutStage (1..10 stages; names; percent rising to a last stage of 100;
// selector ids as UUIDs, none twice; thresholds in range, at least one error threshold;
// no approval on the first stage).
absl::Status ValidateRolloutPlan(const v1::RolloutPlan& plan);

// An agent's bucket for `update_id`: the first 8 bytes of SHA-256("update_id/agent_id") mod
// 10000. Uniform across agents and independent between updates, so the same agents are
// not always the canaries.
int RolloutBucket(absl::string_view update_id, absl::string_view agent_id);

// Places agents in the stages of one update's valid plan: the first selector stage naming
// the agent, else the first percentage stage whose percent * 100 exceeds its bucket. Built
// once per plan (selector ids are hashed, so a lookup does not grow with them); immutable
// afterwards, so safe to share between threads.
class StageAssigner {
 public:
  StageAssigner(const v1::RolloutPlan& plan, std::string update_id);
  int StageOf(absl::string_view agent_id) const;

 private:
  std::string update_id_;
  absl::flat_hash_map<std::string, int> selected_;
  std::vector<std::pair<int, int>> percent_stages_;  // (percent * 100, stage index), rising
  int last_ = 0;
};

}  // namespace redflag::updates

namespace redflag::updates {

// What a rollout's current stage has come to, from its members' delivery states.
struct StageFigures {
  int64_t members = 0;          // every recorded member, whatever its state
  int64_t installed = 0;        // INSTALLED
  int64_t failed = 0;           // FAILED
  int64_t forgiven = 0;         // failures an operator accepted by resuming a halt
  int64_t elapsed_seconds = 0;  // since the stage started
};

// The one decision the updates service takes for an ACTIVE rollout.
enum class StageVerdict {
  kKeepGoing,      // thresholds not reached yet (or the soak time not over)
  kHalt,           // an error threshold is reached: stop offering
  kNextStage,      // success reached: start the next stage
  kAwaitApproval,  // success reached; the next stage waits for an operator
  kComplete,       // success reached on the last stage
};

// Thresholds count failures beyond `forgiven`, over members less `forgiven`. A halt wins
// over success. A stage with no members does not succeed (its agents may not have asked
// yet); one whose every member's failure was forgiven does. `why` (for kHalt) states the figures against the threshold.
StageVerdict JudgeStage(const v1::RolloutPlan& plan, int stage, const StageFigures& f,
                        std::string* why);

}  // namespace redflag::updates
