#include "services/updates/rollout_plan.h"

#include <algorithm>
#include <cstdint>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/crypto.h"
#include "common/status.h"
#include "common/validate.h"

namespace redflag::updates {
namespace {

absl::Status StageError(int i, const v1::RolloutStage& s, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("rollout stage ", i + 1,
                                                 s.name().empty() ? "" : " (", s.name(),
                                                 s.name().empty() ? "" : ")", ": ", what));
}

bool InRange(int64_t v, int64_t lo, int64_t hi) { return v >= lo && v <= hi; }

}  // namespace

absl::Status ValidateRolloutPlan(const v1::RolloutPlan& plan) {
  const int n = plan.stages_size();
  if (n < 1 || n > kMaxRolloutStages) {
    return absl::InvalidArgumentError(
        absl::StrCat("a rollout plan has 1 to ", kMaxRolloutStages, " stages, not ", n));
  }
  std::set<std::string> names;
  std::set<std::string> ids;
  int last_percent = 0;
  for (int i = 0; i < n; ++i) {
    const v1::RolloutStage& s = plan.stages(i);
    REDFLAG_RETURN_IF_ERROR(ValidateSafeName(absl::StrCat("rollout stage ", i + 1, " name"),
                                             s.name(), 64, /*allow_upper=*/true));
    if (!names.insert(s.name()).second) return StageError(i, s, "the name is used twice");
    if (s.agent_ids_size() > 0) {
      if (s.percent() != 0) return StageError(i, s, "percent and agent_ids exclude each other");
      if (s.agent_ids_size() > kMaxStageAgentIds) {
        return StageError(i, s, absl::StrCat("at most ", kMaxStageAgentIds, " agent_ids"));
      }
      for (const std::string& id : s.agent_ids()) {
        REDFLAG_RETURN_IF_ERROR(
            ValidateUuid(absl::StrCat("rollout stage ", i + 1, " agent_ids"), id));
        if (!ids.insert(id).second) {
          return StageError(i, s, absl::StrCat("agent ", id, " is named by two stages or twice"));
        }
      }
    } else {
      if (!InRange(s.percent(), 1, 100)) {
        return StageError(i, s, "percent must be 1..100 (or name agent_ids)");
      }
      if (s.percent() <= last_percent) {
        return StageError(i, s,
                          absl::StrCat("percent must rise from stage to stage (", s.percent(),
                                       " after ", last_percent, ")"));
      }
      last_percent = s.percent();
    }
    if (!InRange(s.success_percent(), 1, 100)) {
      return StageError(i, s, "success_percent must be 1..100");
    }
    if (!InRange(s.halt_after_failures(), 0, 100000) ||
        !InRange(s.halt_failure_percent(), 0, 100)) {
      return StageError(i, s,
                        "halt_after_failures must be 0..100000 and halt_failure_percent 0..100");
    }
    if (s.halt_after_failures() == 0 && s.halt_failure_percent() == 0) {
      return StageError(i, s,
                        "an error threshold is required (halt_after_failures or "
                        "halt_failure_percent)");
    }
    if (!InRange(s.soak_seconds(), 0, kMaxSoakSeconds)) {
      return StageError(i, s, absl::StrCat("soak_seconds must be 0..", kMaxSoakSeconds));
    }
    if (i == 0 && s.wait_for_approval()) {
      return StageError(i, s, "the first stage starts at publication: it cannot wait for approval");
    }
  }
  const v1::RolloutStage& last = plan.stages(n - 1);
  if (last.agent_ids_size() > 0 || last.percent() != 100) {
    return StageError(n - 1, last,
                      "the last stage must be a percentage stage of 100, so every matching "
                      "agent is in a stage");
  }
  return absl::OkStatus();
}

int RolloutBucket(absl::string_view update_id, absl::string_view agent_id) {
  std::string digest = Sha256(absl::StrCat(update_id, "/", agent_id));
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(digest[i]);
  return static_cast<int>(v % 10000);
}

StageAssigner::StageAssigner(const v1::RolloutPlan& plan, std::string update_id)
    : update_id_(std::move(update_id)), last_(plan.stages_size() - 1) {
  for (int i = 0; i < plan.stages_size(); ++i) {
    const v1::RolloutStage& s = plan.stages(i);
    for (const std::string& id : s.agent_ids()) selected_.emplace(id, i);  // first stage wins
    if (s.agent_ids_size() == 0) percent_stages_.emplace_back(s.percent() * 100, i);
  }
}

int StageAssigner::StageOf(absl::string_view agent_id) const {
  if (auto it = selected_.find(agent_id); it != selected_.end()) return it->second;
  const int bucket = RolloutBucket(update_id_, agent_id);
  for (const auto& [limit, stage] : percent_stages_) {
    if (bucket < limit) return stage;
  }
  return last_;  // unreachable for a valid plan: its last stage covers 100 %
}

}  // namespace redflag::updates

namespace redflag::updates {

StageVerdict JudgeStage(const v1::RolloutPlan& plan, int stage, const StageFigures& f,
                        std::string* why) {
  const v1::RolloutStage& s = plan.stages(stage);
  const int64_t failed = f.failed - f.forgiven;
  const int64_t members = f.members - f.forgiven;
  const bool over_count = s.halt_after_failures() > 0 && failed >= s.halt_after_failures();
  const bool over_share = s.halt_failure_percent() > 0 && members > 0 && failed > 0 &&
                          failed * 100 >= int64_t{s.halt_failure_percent()} * members;
  if (over_count || over_share) {
    *why = absl::StrCat("stage ", stage + 1, " (", s.name(), "): ", failed, " of ", members,
                        " members failed (", failed * 100 / std::max<int64_t>(members, 1),
                        " %); threshold ",
                        over_count ? absl::StrCat(s.halt_after_failures(), " failures")
                                   : absl::StrCat(s.halt_failure_percent(), " %"));
    return StageVerdict::kHalt;
  }
  // At least one member recorded; when an operator forgave every member's failure, the
  // stage has succeeded as far as it can (the resume said so).
  const bool succeeded =
      f.members > 0 && f.installed * 100 >= int64_t{s.success_percent()} * members;
  if (!succeeded || f.elapsed_seconds < s.soak_seconds()) return StageVerdict::kKeepGoing;
  if (stage + 1 >= plan.stages_size()) return StageVerdict::kComplete;
  return plan.stages(stage + 1).wait_for_approval() ? StageVerdict::kAwaitApproval
                                                    : StageVerdict::kNextStage;
}

}  // namespace redflag::updates
