#include "agent/instruction_verifier.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/crypto.h"
#include "common/status.h"

namespace redflag::agent {

absl::StatusOr<v1::Instruction> VerifyInstruction(const v1::SignedEnvelope& envelope,
                                                  v1::AgentState& state, absl::Time now) {
  const v1::SigningKey* key = nullptr;
  for (const auto& k : state.pinned_keys()) {
    if (k.key_id() == envelope.key_id()) key = &k;
  }
  if (key == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat("instruction signed by key ", envelope.key_id(), ", which is not pinned"));
  }
  REDFLAG_RETURN_IF_ERROR(VerifyEnvelope(envelope, "redflag.v1.Instruction", key->public_key()));
  v1::Instruction in;
  if (!in.ParseFromString(envelope.payload())) {
    return absl::InvalidArgumentError("instruction payload does not parse");
  }
  if (in.agent_id() != state.agent_id()) {
    return absl::PermissionDeniedError("instruction is addressed to another agent");
  }
  absl::Time issued = absl::FromUnixSeconds(in.issued_at().seconds());
  if (issued < now - kFreshness - kClockSkew) {
    return absl::FailedPreconditionError("instruction is stale (issued more than 5 minutes ago)");
  }
  if (issued > now + kClockSkew) {
    return absl::FailedPreconditionError("instruction is issued in the future");
  }
  if (in.nonce().empty()) return absl::InvalidArgumentError("instruction has no nonce");
  // Forget nonces that have left the window: an instruction that old is stale anyway.
  auto* seen = state.mutable_seen_nonces();
  int64_t horizon = absl::ToUnixSeconds(now - kFreshness - kClockSkew);
  seen->erase(
      std::remove_if(seen->begin(), seen->end(),
                     [horizon](const v1::SeenNonce& n) { return n.issued_at_unix() < horizon; }),
      seen->end());
  for (const auto& n : *seen) {
    if (n.nonce() == in.nonce()) {
      return absl::FailedPreconditionError("instruction nonce was already used (replay)");
    }
  }
  v1::SeenNonce* n = seen->Add();
  n->set_nonce(in.nonce());
  n->set_issued_at_unix(in.issued_at().seconds());
  return in;
}

bool AlreadyApplied(const v1::AgentState& state, const std::string& instruction_id) {
  for (const auto& id : state.applied_instruction_ids()) {
    if (id == instruction_id) return true;
  }
  return false;
}

void MarkApplied(v1::AgentState& state, const std::string& instruction_id) {
  state.add_applied_instruction_ids(instruction_id);
  auto* ids = state.mutable_applied_instruction_ids();
  if (ids->size() > 1000) ids->erase(ids->begin(), ids->begin() + (ids->size() - 1000));
}

}  // namespace redflag::agent
