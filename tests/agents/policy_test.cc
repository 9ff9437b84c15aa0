#include "services/agents/policy.h"

#include <catch2/catch.hpp>

#include "common/crypto.h"

using namespace redflag::agents;

namespace {

AgentRow Agent() {
  AgentRow a;
  a.id = "agent-1";
  a.machine_id = std::string(64, 'a');
  a.version = "0.2.0";
  a.highest_version = "0.2.0";
  return a;
}

PolicySettings Settings() {
  PolicySettings s;
  s.min_version = *redflag::Version::Parse("0.1.22");
  return s;
}

}  // namespace

TEST_CASE("the bound machine at a current version is accepted", "[policy]") {
  Decision d = Evaluate(Agent(), std::string(64, 'a'), "0.2.1", Settings());
  CHECK(d.status.ok());
  CHECK(d.new_highest_version == "0.2.1");
}

TEST_CASE("another machine's fingerprint is a binding violation", "[policy]") {
  Decision d = Evaluate(Agent(), std::string(64, 'b'), "0.2.0", Settings());
  CHECK(d.refusal == Refusal::kBindingMismatch);
  CHECK(d.status.code() == absl::StatusCode::kPermissionDenied);
}

TEST_CASE("blocked agents are refused before anything else", "[policy]") {
  AgentRow a = Agent();
  a.blocked = true;
  a.blocked_reason = "lost laptop";
  Decision d = Evaluate(a, std::string(64, 'a'), "0.2.0", Settings());
  CHECK(d.refusal == Refusal::kBlocked);
  CHECK_THAT(std::string(d.status.message()), Catch::Contains("lost laptop"));
}

TEST_CASE("versions below the minimum and downgrades are refused", "[policy]") {
  Decision old = Evaluate(Agent(), std::string(64, 'a'), "0.1.21", Settings());
  CHECK(old.refusal == Refusal::kBelowMinimum);
  CHECK_THAT(std::string(old.status.message()), Catch::Contains("update the agent"));
  Decision down = Evaluate(Agent(), std::string(64, 'a'), "0.1.30", Settings());
  CHECK(down.refusal == Refusal::kDowngrade);
  Decision bad = Evaluate(Agent(), std::string(64, 'a'), "banana", Settings());
  CHECK(bad.refusal == Refusal::kBadVersion);
  CHECK(bad.status.code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("compliance lists every reason", "[policy]") {
  AgentRow a = Agent();
  int64_t now = 1'000'000'000'000;
  a.last_seen_at_us = now - 10'000'000;
  CHECK(ComplianceIssues(a, Settings(), now).empty());
  a.binding_violations = 2;
  a.version = "0.1.0";
  a.last_seen_at_us = now - 3600LL * 1000000;
  CHECK(ComplianceIssues(a, Settings(), now).size() == 3);
}
