// A rollout plan's rules without a database: what ValidateRolloutPlan refuses (and says),
// where StageAssigner places agents, and what JudgeStage decides from a stage's figures.
#include "services/updates/rollout_plan.h"

#include <catch2/catch.hpp>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/crypto.h"

using namespace redflag;
using namespace redflag::updates;

namespace {

v1::RolloutStage* AddStage(v1::RolloutPlan& p, const std::string& name, int percent) {
  v1::RolloutStage* s = p.add_stages();
  s->set_name(name);
  s->set_percent(percent);
  s->set_success_percent(90);
  s->set_halt_failure_percent(20);
  return s;
}

// canary 10 % -> half 50 % -> all 100 %
v1::RolloutPlan ThreeStages() {
  v1::RolloutPlan p;
  AddStage(p, "canary", 10);
  AddStage(p, "half", 50);
  AddStage(p, "all", 100);
  return p;
}

std::string ErrorOf(const v1::RolloutPlan& p) {
  absl::Status s = ValidateRolloutPlan(p);
  REQUIRE(s.code() == absl::StatusCode::kInvalidArgument);
  return std::string(s.message());
}

}  // namespace

TEST_CASE("a well-formed plan is accepted", "[rollout]") {
  CHECK(ValidateRolloutPlan(ThreeStages()).ok());
  v1::RolloutPlan p;
  v1::RolloutStage* canary = AddStage(p, "canary-group", 0);
  canary->add_agent_ids(RandomUuid());
  canary->set_soak_seconds(600);
  AddStage(p, "rest", 100)->set_wait_for_approval(true);
  CHECK(ValidateRolloutPlan(p).ok());
}

TEST_CASE("a plan outside its rules is refused with the stage and the rule", "[rollout]") {
  v1::RolloutPlan empty;
  CHECK_THAT(ErrorOf(empty), Catch::Contains("1 to 10 stages, not 0"));

  v1::RolloutPlan many;
  for (int i = 1; i <= 11; ++i) AddStage(many, absl::StrCat("s", i), i * 9);
  CHECK_THAT(ErrorOf(many), Catch::Contains("not 11"));

  v1::RolloutPlan p = ThreeStages();
  p.mutable_stages(1)->set_percent(10);
  CHECK_THAT(ErrorOf(p), Catch::Contains("stage 2 (half): percent must rise"));

  p = ThreeStages();
  p.mutable_stages(2)->set_percent(90);
  CHECK_THAT(ErrorOf(p), Catch::Contains("last stage must be a percentage stage of 100"));

  p = ThreeStages();
  p.mutable_stages(0)->set_halt_failure_percent(0);
  CHECK_THAT(ErrorOf(p), Catch::Contains("stage 1 (canary): an error threshold is required"));

  p = ThreeStages();
  p.mutable_stages(0)->set_wait_for_approval(true);
  CHECK_THAT(ErrorOf(p), Catch::Contains("cannot wait for approval"));

  p = ThreeStages();
  p.mutable_stages(1)->set_name("canary");
  CHECK_THAT(ErrorOf(p), Catch::Contains("the name is used twice"));

  p = ThreeStages();
  p.mutable_stages(0)->set_name("bad\nname");
  CHECK(!ValidateRolloutPlan(p).ok());

  p = ThreeStages();
  p.mutable_stages(0)->add_agent_ids(RandomUuid());
  CHECK_THAT(ErrorOf(p), Catch::Contains("percent and agent_ids exclude each other"));

  p = ThreeStages();
  p.mutable_stages(0)->set_percent(0);
  p.mutable_stages(0)->add_agent_ids("not-a-uuid");
  CHECK(!ValidateRolloutPlan(p).ok());

  p = ThreeStages();
  p.mutable_stages(0)->set_success_percent(0);
  CHECK_THAT(ErrorOf(p), Catch::Contains("success_percent must be 1..100"));

  p = ThreeStages();
  p.mutable_stages(0)->set_soak_seconds(-1);
  CHECK_THAT(ErrorOf(p), Catch::Contains("soak_seconds must be 0..604800"));

  // The same agent in two selector stages would make its stage ambiguous.
  v1::RolloutPlan twice;
  const std::string id = RandomUuid();
  AddStage(twice, "a", 0)->add_agent_ids(id);
  AddStage(twice, "b", 0)->add_agent_ids(id);
  AddStage(twice, "rest", 100);
  CHECK_THAT(ErrorOf(twice), Catch::Contains("named by two stages"));
}

TEST_CASE("stages are decided once per agent, about as large as planned, and differ by update",
          "[rollout]") {
  const v1::RolloutPlan p = ThreeStages();
  const std::string update = RandomUuid();
  StageAssigner a(p, update);
  std::map<int, int> per_stage;
  std::vector<std::string> agents;
  for (int i = 0; i < 10000; ++i) agents.push_back(RandomUuid());
  for (const std::string& agent : agents) {
    const int s = a.StageOf(agent);
    CHECK(s == StageAssigner(p, update).StageOf(agent));  // same answer from a second assigner
    ++per_stage[s];
  }
  // 10 % / 40 % / 50 % of 10,000 (binomial: 3 standard deviations are under 150).
  CHECK(per_stage[0] > 850);
  CHECK(per_stage[0] < 1150);
  CHECK(per_stage[1] > 3800);
  CHECK(per_stage[1] < 4200);
  CHECK(per_stage[2] > 4800);
  CHECK(per_stage[2] < 5200);

  // Another update's canaries are another tenth of the fleet, not the same agents.
  StageAssigner b(p, RandomUuid());
  int both = 0;
  for (const std::string& agent : agents) both += a.StageOf(agent) == 0 && b.StageOf(agent) == 0;
  CHECK(both < 200);  // about 1 % expected if independent; 10 % if the same

  // A selector stage takes its agents whatever their bucket.
  v1::RolloutPlan sel;
  v1::RolloutStage* canary = AddStage(sel, "canary", 0);
  for (int i = 0; i < 5; ++i) canary->add_agent_ids(agents[i]);
  AddStage(sel, "rest", 100);
  REQUIRE(ValidateRolloutPlan(sel).ok());
  StageAssigner c(sel, update);
  for (int i = 0; i < 5; ++i) CHECK(c.StageOf(agents[i]) == 0);
  for (int i = 5; i < 100; ++i) CHECK(c.StageOf(agents[i]) == 1);
}

TEST_CASE("a stage halts on its error thresholds before anything else", "[rollout]") {
  v1::RolloutPlan p = ThreeStages();
  p.mutable_stages(0)->set_halt_after_failures(3);
  std::string why;

  StageFigures f;
  f.members = 10;
  f.installed = 7;
  f.failed = 2;  // 20 %: the percentage threshold
  CHECK(JudgeStage(p, 0, f, &why) == StageVerdict::kHalt);
  CHECK_THAT(why, Catch::Contains("2 of 10 members failed (20 %); threshold 20 %"));

  f.members = 100;
  f.installed = 50;
  f.failed = 3;  // 3 %: the absolute threshold
  CHECK(JudgeStage(p, 0, f, &why) == StageVerdict::kHalt);
  CHECK_THAT(why, Catch::Contains("threshold 3 failures"));

  f.failed = 2;
  CHECK(JudgeStage(p, 0, f, &why) == StageVerdict::kKeepGoing);  // 50 % installed < 90 %

  // Failures an operator forgave by resuming count no more; new ones do.
  f.installed = 95;
  f.failed = 5;
  f.forgiven = 5;
  CHECK(JudgeStage(p, 0, f, &why) == StageVerdict::kNextStage);
  f.failed = 8;
  CHECK(JudgeStage(p, 0, f, &why) == StageVerdict::kHalt);
}

TEST_CASE("a stage advances on success after its soak, waiting for approval when planned",
          "[rollout]") {
  v1::RolloutPlan p = ThreeStages();
  p.mutable_stages(0)->set_soak_seconds(60);
  p.mutable_stages(1)->set_wait_for_approval(true);
  std::string why;
  StageFigures f;
  f.members = 20;
  f.installed = 18;  // 90 %
  f.elapsed_seconds = 59;
  CHECK(JudgeStage(p, 0, f, &why) == StageVerdict::kKeepGoing);
  f.elapsed_seconds = 60;
  CHECK(JudgeStage(p, 0, f, &why) == StageVerdict::kAwaitApproval);
  f.installed = 17;
  CHECK(JudgeStage(p, 0, f, &why) == StageVerdict::kKeepGoing);
  f.installed = 20;
  CHECK(JudgeStage(p, 1, f, &why) == StageVerdict::kNextStage);
  CHECK(JudgeStage(p, 2, f, &why) == StageVerdict::kComplete);

  // A stage with no members yet never succeeds by itself: the canary is not skipped just
  // because no canary agent has connected since publication.
  StageFigures none;
  none.elapsed_seconds = 3600;
  CHECK(JudgeStage(p, 0, none, &why) == StageVerdict::kKeepGoing);

  // Every member failed and the operator resumed, forgiving them all: the stage goes on.
  StageFigures forgiven;
  forgiven.members = 4;
  forgiven.failed = 4;
  forgiven.forgiven = 4;
  forgiven.elapsed_seconds = 60;
  CHECK(JudgeStage(p, 0, forgiven, &why) == StageVerdict::kAwaitApproval);
}
