#include "services/updates/rollouts.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/encoding.h"
#include "common/log.h"
#include "common/pg_listener.h"
#include "common/status.h"
#include "common/validate.h"
#include "services/updates/rollout_plan.h"
#include "services/updates/store.h"

namespace redflag::updates {
namespace {

constexpr char kSupervisor[] = "updates-service";

constexpr Statement kInsert{
    "rollouts_insert",
    "INSERT INTO updates.rollouts(update_id, plan, state) VALUES ($1, $2, 'ACTIVE')"};
#define ROLLOUT_COLS                                                                      \
  "plan, state, current_stage, floor(extract(epoch from stage_started_at))::bigint, "     \
  "forgiven_failures, paused_by, reason, floor(extract(epoch from updated_at))::bigint, " \
  "floor(extract(epoch from now() - stage_started_at))::bigint"
constexpr Statement kRead{"rollouts_read",
                          "SELECT " ROLLOUT_COLS " FROM updates.rollouts WHERE update_id = $1"};
constexpr Statement kLock{"rollouts_lock",
                          "SELECT " ROLLOUT_COLS
                          " FROM updates.rollouts WHERE update_id = $1 FOR UPDATE"};
constexpr Statement kActive{"rollouts_active",
                            "SELECT update_id FROM updates.rollouts WHERE state = 'ACTIVE'"};
constexpr Statement kStageCounts{
    "rollouts_stage_counts",
    "SELECT stage, state, count(*) FROM updates.deliveries WHERE update_id = $1 "
    "AND stage IS NOT NULL AND ($2 < 0 OR stage = $2) GROUP BY stage, state"};
constexpr Statement kSetState{
    "rollouts_set_state",
    "UPDATE updates.rollouts SET state = $2, reason = $3, paused_by = $4, "
    "forgiven_failures = $5, updated_at = now() WHERE update_id = $1"};
constexpr Statement kStartStage{
    "rollouts_start_stage",
    "UPDATE updates.rollouts SET state = 'ACTIVE', current_stage = $2, stage_started_at = now(), "
    "forgiven_failures = 0, reason = '', paused_by = '', updated_at = now() WHERE update_id = $1"};
constexpr Statement kPromote{"rollouts_promote",
                             "UPDATE updates.deliveries SET state = 'OFFERED', updated_at = now() "
                             "WHERE update_id = $1 AND state = 'HELD' AND stage <= $2"};
// Held members were never offered it: there is nothing to revoke on their side.
constexpr Statement kWithdrawHeld{
    "rollouts_withdraw_held",
    "UPDATE updates.deliveries SET state = 'WITHDRAWN', revocation_acked = true, "
    "updated_at = now() WHERE update_id = $1 AND state = 'HELD'"};
constexpr Statement kPauseAll{
    "rollouts_pause_all",
    "UPDATE updates.rollouts SET state = 'PAUSED', paused_by = 'emergency', reason = $1, "
    "updated_at = now() WHERE state IN ('ACTIVE', 'WAITING_APPROVAL') RETURNING update_id::text"};
constexpr Statement kResumeAll{
    "rollouts_resume_all",
    "UPDATE updates.rollouts SET state = 'ACTIVE', paused_by = '', reason = '', "
    "updated_at = now() WHERE state = 'PAUSED' AND paused_by = 'emergency' "
    "RETURNING update_id::text"};
constexpr Statement kUnfinished{
    "rollouts_unfinished",
    "SELECT update_id::text FROM updates.rollouts WHERE state NOT IN ('COMPLETED', 'ABORTED') "
    "ORDER BY update_id LIMIT $1"};
constexpr Statement kCountByState{"rollouts_count_by_state",
                                  "SELECT state, count(*) FROM updates.rollouts GROUP BY state"};

// One rollout row as read (kRead / kLock).
struct Row {
  v1::RolloutPlan plan;
  v1::RolloutState state = v1::ROLLOUT_STATE_UNSPECIFIED;
  int stage = 0;
  int64_t stage_started_at = 0;
  int64_t forgiven = 0;
  std::string paused_by;
  std::string reason;
  int64_t updated_at = 0;
  int64_t elapsed_seconds = 0;
};

std::string StateName(v1::RolloutState s) {
  // Stored without the enum's ROLLOUT_ prefix: ACTIVE, PAUSED, ...
  return v1::RolloutState_Name(s).substr(sizeof("ROLLOUT_") - 1);
}

absl::StatusOr<Row> RowFrom(const PgResult& r) {
  Row row;
  REDFLAG_ASSIGN_OR_RETURN(std::string plan, HexDecode(r.Text(0, 0)));
  if (!row.plan.ParseFromString(plan))
    return absl::DataLossError("stored rollout plan does not parse");
  v1::RolloutState_Parse(absl::StrCat("ROLLOUT_", r.Text(0, 1)), &row.state);
  row.stage = static_cast<int>(r.Int(0, 2));
  row.stage_started_at = r.Int(0, 3);
  row.forgiven = r.Int(0, 4);
  row.paused_by = r.Text(0, 5);
  row.reason = r.Text(0, 6);
  row.updated_at = r.Int(0, 7);
  row.elapsed_seconds = r.Int(0, 8);
  return row;
}

// Reads (stmt kRead) or locks (kLock) the rollout of `update_id`; NOT_FOUND without one.
absl::StatusOr<Row> ReadRow(PgConnection& c, const Statement& stmt, const std::string& update_id) {
  REDFLAG_RETURN_IF_ERROR(ValidateUuid("update_id", update_id));
  REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(stmt, {update_id}));
  if (r.Rows() == 0)
    return absl::NotFoundError(absl::StrCat("update ", update_id, " has no rollout"));
  return RowFrom(r);
}

// Members per stage and delivery state; `stage` -1 for every stage.
absl::StatusOr<std::map<int, std::map<std::string, int64_t>>> Counts(PgConnection& c,
                                                                     const std::string& update_id,
                                                                     int stage) {
  std::map<int, std::map<std::string, int64_t>> out;
  REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kStageCounts, {update_id, absl::StrCat(stage)}));
  for (int i = 0; i < r.Rows(); ++i) out[static_cast<int>(r.Int(i, 0))][r.Text(i, 1)] = r.Int(i, 2);
  return out;
}

StageFigures FiguresOf(const std::map<std::string, int64_t>& counts, const Row& row) {
  StageFigures f;
  for (const auto& [state, n] : counts) {
    f.members += n;
    if (state == "INSTALLED") f.installed = n;
    if (state == "FAILED") f.failed = n;
  }
  f.forgiven = row.forgiven;
  f.elapsed_seconds = row.elapsed_seconds;
  return f;
}

std::string Detail(const std::string& update_id, const Row& row, int stage,
                   const std::string& extra_json = "") {
  return absl::StrCat("{\"update\":", JsonQuote(update_id), ",\"stage\":", stage + 1,
                      ",\"stage_name\":", JsonQuote(row.plan.stages(stage).name()), extra_json,
                      "}");
}

absl::Status Record(const SecurityEventWriter& events, PgConnection& c, const std::string& type,
                    const Actor& actor, std::string detail) {
  return events.Record(c, {type, actor.subject, actor.source, std::move(detail)});
}

// Starts stage `stage` (its held members become offers) and tells the gateways.
absl::Status StartStage(const SecurityEventWriter& events, PgConnection& c,
                        const std::string& update_id, const Row& row, int stage, const Actor& actor,
                        bool approved) {
  REDFLAG_RETURN_IF_ERROR(c.Exec(kStartStage, {update_id, absl::StrCat(stage)}).status());
  REDFLAG_ASSIGN_OR_RETURN(PgResult promoted, c.Exec(kPromote, {update_id, absl::StrCat(stage)}));
  REDFLAG_RETURN_IF_ERROR(
      Record(events, c, "ROLLOUT_STAGE_STARTED", actor,
             Detail(update_id, row, stage,
                    absl::StrCat(",\"offered_now\":", promoted.AffectedRows(),
                                 ",\"approved\":", approved ? "true" : "false"))));
  return Notify(c, kUpdatesChannel, absl::StrCat("published:", update_id));
}

absl::Status SetState(PgConnection& c, const std::string& update_id, v1::RolloutState state,
                      const std::string& reason, const std::string& paused_by, int64_t forgiven) {
  return c.Exec(kSetState, {update_id, StateName(state), reason, paused_by, absl::StrCat(forgiven)})
      .status();
}

absl::Status NotApplicable(const std::string& action, const Row& row) {
  return absl::FailedPreconditionError(
      absl::StrCat("cannot ", action, " a rollout that is ", StateName(row.state)));
}

// Judges the current stage of a locked ACTIVE rollout and applies the verdict.
absl::StatusOr<bool> Judge(const SecurityEventWriter& events, PgConnection& c,
                           const std::string& update_id, const Row& row) {
  REDFLAG_ASSIGN_OR_RETURN(auto counts, Counts(c, update_id, row.stage));
  std::string why;
  const Actor supervisor{kSupervisor, "", ""};
  switch (JudgeStage(row.plan, row.stage, FiguresOf(counts[row.stage], row), &why)) {
    case StageVerdict::kKeepGoing:
      return false;
    case StageVerdict::kHalt:
      REDFLAG_RETURN_IF_ERROR(SetState(c, update_id, v1::ROLLOUT_HALTED, why, "", row.forgiven));
      REDFLAG_RETURN_IF_ERROR(
          Record(events, c, "ROLLOUT_HALTED", supervisor,
                 Detail(update_id, row, row.stage, absl::StrCat(",\"reason\":", JsonQuote(why)))));
      LogWarn(absl::StrCat("rollout of update ", update_id, " halted: ", why));
      return true;
    case StageVerdict::kAwaitApproval:
      REDFLAG_RETURN_IF_ERROR(
          SetState(c, update_id, v1::ROLLOUT_WAITING_APPROVAL, "", "", row.forgiven));
      REDFLAG_RETURN_IF_ERROR(Record(events, c, "ROLLOUT_WAITING_APPROVAL", supervisor,
                                     Detail(update_id, row, row.stage + 1)));
      return true;
    case StageVerdict::kNextStage:
      REDFLAG_RETURN_IF_ERROR(
          StartStage(events, c, update_id, row, row.stage + 1, supervisor, false));
      return true;
    case StageVerdict::kComplete:
      REDFLAG_RETURN_IF_ERROR(SetState(c, update_id, v1::ROLLOUT_COMPLETED, "", "", row.forgiven));
      REDFLAG_RETURN_IF_ERROR(
          Record(events, c, "ROLLOUT_COMPLETED", supervisor, Detail(update_id, row, row.stage)));
      return true;
  }
  return false;
}

}  // namespace

absl::Status RolloutStore::Create(PgConnection& c, const std::string& update_id,
                                  const v1::RolloutPlan& plan, const Actor& actor) const {
  REDFLAG_RETURN_IF_ERROR(
      c.Exec(kInsert, {update_id, HexEncode(plan.SerializeAsString())}).status());
  Row row;
  row.plan = plan;
  return Record(events_, c, "ROLLOUT_STAGE_STARTED", actor,
                Detail(update_id, row, 0, R"(,"offered_now":0,"approved":false)"));
}

absl::StatusOr<v1::Rollout> RolloutStore::Get(const std::string& update_id) {
  v1::Rollout out;
  REDFLAG_RETURN_IF_ERROR(pool_.WithConnection([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(Row row, ReadRow(c, kRead, update_id));
    REDFLAG_ASSIGN_OR_RETURN(auto counts, Counts(c, update_id, -1));
    out.set_update_id(update_id);
    out.set_state(row.state);
    out.set_current_stage(row.stage);
    out.mutable_stage_started_at()->set_seconds(row.stage_started_at);
    out.set_reason(row.reason);
    out.set_paused_by_emergency_stop(row.paused_by == "emergency");
    out.mutable_updated_at()->set_seconds(row.updated_at);
    for (int i = 0; i < row.plan.stages_size(); ++i) {
      v1::RolloutStageStatus* s = out.add_stages();
      s->set_index(i);
      *s->mutable_stage() = row.plan.stages(i);
      for (const auto& [state, n] : counts[i]) {
        (*s->mutable_counts())[state] = n;
        s->set_members(s->members() + n);
      }
      if (i == row.stage) s->set_forgiven_failures(row.forgiven);
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::Rollout> RolloutStore::Apply(const std::string& update_id, RolloutAction action,
                                                const Actor& actor, const std::string& reason) {
  REDFLAG_RETURN_IF_ERROR(pool_.InTransaction([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(Row row, ReadRow(c, kLock, update_id));
    const std::string why = absl::StrCat(",\"reason\":", JsonQuote(reason));
    switch (action) {
      case RolloutAction::kPause:
        if (row.state != v1::ROLLOUT_ACTIVE && row.state != v1::ROLLOUT_WAITING_APPROVAL) {
          return NotApplicable("pause", row);
        }
        REDFLAG_RETURN_IF_ERROR(
            SetState(c, update_id, v1::ROLLOUT_PAUSED, reason, "operator", row.forgiven));
        return Record(events_, c, "ROLLOUT_PAUSED", actor, Detail(update_id, row, row.stage, why));
      case RolloutAction::kResume: {
        if (row.state != v1::ROLLOUT_PAUSED && row.state != v1::ROLLOUT_HALTED) {
          return NotApplicable("resume", row);
        }
        // Resuming a halt accepts the stage's failures so far; new ones count afresh.
        int64_t forgiven = row.forgiven;
        if (row.state == v1::ROLLOUT_HALTED) {
          REDFLAG_ASSIGN_OR_RETURN(auto counts, Counts(c, update_id, row.stage));
          forgiven = counts[row.stage]["FAILED"];
        }
        REDFLAG_RETURN_IF_ERROR(SetState(c, update_id, v1::ROLLOUT_ACTIVE, "", "", forgiven));
        REDFLAG_RETURN_IF_ERROR(
            Record(events_, c, "ROLLOUT_RESUMED", actor,
                   Detail(update_id, row, row.stage,
                          absl::StrCat(why, ",\"was\":", JsonQuote(StateName(row.state)),
                                       ",\"forgiven_failures\":", forgiven))));
        return Notify(c, kUpdatesChannel, absl::StrCat("published:", update_id));
      }
      case RolloutAction::kAbort: {
        if (row.state == v1::ROLLOUT_COMPLETED || row.state == v1::ROLLOUT_ABORTED) {
          return NotApplicable("abort", row);
        }
        REDFLAG_RETURN_IF_ERROR(c.Exec(kWithdrawHeld, {update_id}).status());
        REDFLAG_ASSIGN_OR_RETURN(PgResult open, c.Exec(kWithdrawOpenOffers, {update_id}));
        REDFLAG_RETURN_IF_ERROR(
            SetState(c, update_id, v1::ROLLOUT_ABORTED, reason, "", row.forgiven));
        REDFLAG_RETURN_IF_ERROR(
            Record(events_, c, "ROLLOUT_ABORTED", actor,
                   Detail(update_id, row, row.stage,
                          absl::StrCat(why, ",\"offers_withdrawn\":", open.AffectedRows()))));
        return Notify(c, kUpdatesChannel, absl::StrCat("revoked:", update_id));
      }
      case RolloutAction::kApprove:
        if (row.state != v1::ROLLOUT_ACTIVE && row.state != v1::ROLLOUT_WAITING_APPROVAL) {
          return NotApplicable("approve the next stage of", row);
        }
        if (row.stage + 1 >= row.plan.stages_size()) {
          return absl::FailedPreconditionError("the rollout is at its last stage");
        }
        return StartStage(events_, c, update_id, row, row.stage + 1, actor, true);
    }
    return absl::InvalidArgumentError("unknown rollout action");
  }));
  return Get(update_id);
}

absl::StatusOr<std::vector<std::string>> RolloutStore::PauseAll(const Actor& actor,
                                                                const std::string& reason) {
  std::vector<std::string> ids;
  REDFLAG_RETURN_IF_ERROR(pool_.InTransaction([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kPauseAll, {reason}));
    for (int i = 0; i < r.Rows(); ++i) ids.push_back(r.Text(i, 0));
    return Record(events_, c, "ROLLOUT_EMERGENCY_STOP", actor,
                  absl::StrCat("{\"reason\":", JsonQuote(reason), ",\"paused\":", ids.size(), "}"));
  }));
  return ids;
}

absl::StatusOr<std::vector<std::string>> RolloutStore::ResumeAll(const Actor& actor,
                                                                 const std::string& reason) {
  std::vector<std::string> ids;
  REDFLAG_RETURN_IF_ERROR(pool_.InTransaction([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kResumeAll, {}));
    for (int i = 0; i < r.Rows(); ++i) {
      ids.push_back(r.Text(i, 0));
      REDFLAG_RETURN_IF_ERROR(Notify(c, kUpdatesChannel, absl::StrCat("published:", ids.back())));
    }
    return Record(
        events_, c, "ROLLOUT_EMERGENCY_STOP_LIFTED", actor,
        absl::StrCat("{\"reason\":", JsonQuote(reason), ",\"resumed\":", ids.size(), "}"));
  }));
  return ids;
}

absl::StatusOr<int> RolloutStore::EvaluateAll() {
  std::vector<std::string> active;
  REDFLAG_RETURN_IF_ERROR(pool_.WithConnection([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kActive, {}));
    for (int i = 0; i < r.Rows(); ++i) active.push_back(r.Text(i, 0));
    return absl::OkStatus();
  }));
  int transitions = 0;
  for (const std::string& id : active) {
    REDFLAG_RETURN_IF_ERROR(pool_.InTransaction([&](PgConnection& c) -> absl::Status {
      // Waits for the lock rather than skipping: offers hold the row FOR SHARE, so on a busy
      // rollout SKIP LOCKED would skip it nearly every time. A replica that waited on another's
      // judgement reads the row that one left and judges the stage as it now stands.
      REDFLAG_ASSIGN_OR_RETURN(Row row, ReadRow(c, kLock, id));
      if (row.state != v1::ROLLOUT_ACTIVE) return absl::OkStatus();  // changed meanwhile
      REDFLAG_ASSIGN_OR_RETURN(bool changed, Judge(events_, c, id, row));
      transitions += changed ? 1 : 0;
      return absl::OkStatus();
    }));
  }
  return transitions;
}

absl::StatusOr<std::vector<v1::Rollout>> RolloutStore::Unfinished(int limit) {
  std::vector<std::string> ids;
  REDFLAG_RETURN_IF_ERROR(pool_.WithConnection([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kUnfinished, {absl::StrCat(limit)}));
    for (int i = 0; i < r.Rows(); ++i) ids.push_back(r.Text(i, 0));
    return absl::OkStatus();
  }));
  std::vector<v1::Rollout> out;
  for (const std::string& id : ids) {
    absl::StatusOr<v1::Rollout> r = Get(id);
    if (r.ok()) out.push_back(*std::move(r));  // NOT_FOUND cannot happen: rollouts stay
  }
  return out;
}

absl::StatusOr<std::map<std::string, int64_t>> RolloutStore::CountByState() {
  std::map<std::string, int64_t> out;
  REDFLAG_RETURN_IF_ERROR(pool_.WithConnection([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kCountByState, {}));
    for (int i = 0; i < r.Rows(); ++i) out[r.Text(i, 0)] = r.Int(i, 1);
    return absl::OkStatus();
  }));
  return out;
}

}  // namespace redflag::updates
