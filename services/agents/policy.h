// The checks every agent request passes (stream open and each check-in), as pure logic:
// not blocked, fingerprint equals the binding, version ≥ minimum and ≥ the highest the
// agent has reported. The store applies the decision; nothing here touches I/O.
#pragma once

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "common/version.h"
#include "redflag/v1/agents.pb.h"

namespace redflag::agents {

struct AgentRow {
  std::string id;
  std::string machine_id;
  std::string hostname;
  std::string platform;
  std::string version;
  std::string highest_version;
  std::string registration_token_id;
  int64_t registered_at_us = 0;
  int64_t last_seen_at_us = 0;  // 0: never
  bool blocked = false;
  std::string blocked_reason;
  int binding_violations = 0;
  int64_t last_verified_at_us = 0;
  std::string verify_result;
  std::string pinned_key_ids;  // comma-separated
};

enum class Refusal { kNone, kBlocked, kBindingMismatch, kBelowMinimum, kDowngrade, kBadVersion };

struct Decision {
  absl::Status status;  // OK or the refusal to send back
  Refusal refusal = Refusal::kNone;
  std::string new_highest_version;  // when accepted
};

struct PolicySettings {
  Version min_version;
  int violations_before_block = 3;
  int64_t offline_after_seconds = 300;
};

// The policy part of the operators' security settings (validated: a min_agent_version that
// does not parse, which validation prevents, leaves the minimum at 0).
PolicySettings PolicyFrom(const v1::SecuritySettings& s);

Decision Evaluate(const AgentRow& agent, const std::string& presented_machine_id,
                  const std::string& presented_version, const PolicySettings& settings);

// Reasons an agent is not compliant at `now_us` (empty: compliant).
std::vector<std::string> ComplianceIssues(const AgentRow& agent, const PolicySettings& settings,
                                          int64_t now_us);

}  // namespace redflag::agents
