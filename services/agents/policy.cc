#include "services/agents/policy.h"

#include "absl/strings/str_cat.h"
#include "common/crypto.h"

namespace redflag::agents {

PolicySettings PolicyFrom(const v1::SecuritySettings& s) {
  PolicySettings p;
  if (absl::StatusOr<Version> v = Version::Parse(s.min_agent_version()); v.ok()) p.min_version = *v;
  p.violations_before_block = s.binding_violations_before_block();
  p.offline_after_seconds = s.offline_after_seconds();
  return p;
}

Decision Evaluate(const AgentRow& agent, const std::string& machine_id, const std::string& version,
                  const PolicySettings& settings) {
  Decision d;
  if (agent.blocked) {
    d.refusal = Refusal::kBlocked;
    d.status = absl::PermissionDeniedError(absl::StrCat("agent ", agent.id, " is blocked",
                                                        agent.blocked_reason.empty() ? "" : ": ",
                                                        agent.blocked_reason));
    return d;
  }
  // Compare in constant time: fingerprints are not secret, but the habit costs nothing.
  if (!ConstantTimeEquals(machine_id, agent.machine_id)) {
    d.refusal = Refusal::kBindingMismatch;
    d.status = absl::PermissionDeniedError(
        "machine fingerprint does not match this agent's binding (x-machine-id)");
    return d;
  }
  absl::StatusOr<Version> v = Version::Parse(version);
  if (!v.ok()) {
    d.refusal = Refusal::kBadVersion;
    d.status = absl::InvalidArgumentError(v.status().message());
    return d;
  }
  if (v->Compare(settings.min_version) < 0) {
    d.refusal = Refusal::kBelowMinimum;
    d.status = absl::FailedPreconditionError(
        absl::StrCat("agent version ", v->ToString(), " is below the minimum ",
                     settings.min_version.ToString(), " (MIN_AGENT_VERSION); update the agent"));
    return d;
  }
  d.new_highest_version = v->ToString();
  if (!agent.highest_version.empty()) {
    absl::StatusOr<Version> highest = Version::Parse(agent.highest_version);
    if (highest.ok() && v->Compare(*highest) < 0) {
      d.refusal = Refusal::kDowngrade;
      d.status = absl::FailedPreconditionError(
          absl::StrCat("agent version ", v->ToString(), " is lower than ", highest->ToString(),
                       ", which this agent reported before; downgrades are refused"));
      return d;
    }
    if (highest.ok() && v->Compare(*highest) <= 0) d.new_highest_version = highest->ToString();
  }
  return d;
}

std::vector<std::string> ComplianceIssues(const AgentRow& a, const PolicySettings& s,
                                          int64_t now_us) {
  std::vector<std::string> issues;
  if (a.blocked) issues.emplace_back("blocked");
  if (a.binding_violations > 0) {
    issues.push_back(absl::StrCat(a.binding_violations, " machine binding violation(s)"));
  }
  absl::StatusOr<Version> v = Version::Parse(a.version);
  if (!v.ok() || v->Compare(s.min_version) < 0) {
    issues.push_back(
        absl::StrCat("version ", a.version, " below minimum ", s.min_version.ToString()));
  }
  if (a.last_seen_at_us == 0 || now_us - a.last_seen_at_us > s.offline_after_seconds * 1000000) {
    issues.emplace_back("offline");
  }
  return issues;
}

}  // namespace redflag::agents
