#include "agent/instruction_verifier.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/crypto.h"
#include "common/status.h"

namespace redflag::agent {

namespace {

const v1::SigningKey* Pinned(const v1::AgentState& state, const std::string& key_id) {
  for (const auto& k : state.pinned_keys()) {
    if (k.key_id() == key_id) return &k;
  }
  return nullptr;
}

// A key announcement signed by the announced key itself is trusted only through its
// endorsement by a key already pinned. Returns the endorsed key, or why not.
absl::StatusOr<v1::SigningKey> EndorsedKey(const v1::SignedEnvelope& envelope,
                                           const v1::AgentState& state) {
  v1::Instruction claimed;  // unverified: read only to find the endorsement
  if (!claimed.ParseFromString(envelope.payload()) || !claimed.has_key_announcement() ||
      !claimed.key_announcement().has_endorsement()) {
    return absl::PermissionDeniedError(
        absl::StrCat("instruction signed by key ", envelope.key_id(), ", which is not pinned"));
  }
  const v1::SignedEnvelope& endorsement = claimed.key_announcement().endorsement();
  if (IsKeyRevoked(state, endorsement.key_id())) {
    return absl::PermissionDeniedError(absl::StrCat(
        "key ", envelope.key_id(), " is endorsed by revoked key ", endorsement.key_id()));
  }
  const v1::SigningKey* endorser = Pinned(state, endorsement.key_id());
  if (endorser == nullptr) {
    return absl::PermissionDeniedError(absl::StrCat("key ", envelope.key_id(), " is endorsed by ",
                                                    endorsement.key_id(), ", which is not pinned"));
  }
  REDFLAG_RETURN_IF_ERROR(
      VerifyEnvelope(endorsement, "redflag.v1.KeyEndorsement", endorser->public_key()));
  v1::SigningKey endorsed;
  if (!endorsed.ParseFromString(endorsement.payload()) || endorsed.key_id() != envelope.key_id() ||
      KeyIdOf(endorsed.public_key()) != endorsed.key_id()) {
    return absl::PermissionDeniedError("key endorsement does not name the signing key");
  }
  return endorsed;
}

}  // namespace

absl::StatusOr<v1::Instruction> VerifyInstruction(const v1::SignedEnvelope& envelope,
                                                  v1::AgentState& state, absl::Time now) {
  if (IsKeyRevoked(state, envelope.key_id())) {
    return absl::PermissionDeniedError(
        absl::StrCat("instruction signed by revoked key ", envelope.key_id()));
  }
  std::string public_key;
  if (const v1::SigningKey* key = Pinned(state, envelope.key_id())) {
    public_key = key->public_key();
  } else {
    REDFLAG_ASSIGN_OR_RETURN(v1::SigningKey endorsed, EndorsedKey(envelope, state));
    public_key = endorsed.public_key();
  }
  REDFLAG_RETURN_IF_ERROR(VerifyEnvelope(envelope, "redflag.v1.Instruction", public_key));
  v1::Instruction in;
  if (!in.ParseFromString(envelope.payload())) {
    return absl::InvalidArgumentError("instruction payload does not parse");
  }
  if (in.agent_id() != state.agent_id()) {
    return absl::PermissionDeniedError("instruction is addressed to another agent");
  }
  absl::Time issued = absl::FromUnixSeconds(in.issued_at().seconds());
  const absl::Duration window = FreshnessOf(in);
  if (issued < now - window - kClockSkew) {
    return absl::FailedPreconditionError(absl::StrCat("instruction is stale (issued more than ",
                                                      absl::ToInt64Seconds(window),
                                                      " seconds ago, its freshness window)"));
  }
  if (issued > now + kClockSkew) {
    return absl::FailedPreconditionError("instruction is issued in the future");
  }
  if (in.nonce().empty()) return absl::InvalidArgumentError("instruction has no nonce");
  // Forget nonces older than the longest window any instruction may carry: an instruction
  // that old is stale whatever it says, so its nonce can never be replayed.
  auto* seen = state.mutable_seen_nonces();
  int64_t horizon = absl::ToUnixSeconds(now - kMaxFreshness - kClockSkew);
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

absl::Duration FreshnessOf(const v1::Instruction& in) {
  if (in.valid_for_seconds() == 0) return kFreshness;
  return std::clamp(absl::Seconds(in.valid_for_seconds()), kMinFreshness, kMaxFreshness);
}

absl::Status ApplyKeyRevocation(const std::string& signer_key_id, const v1::KeyRevocation& rev,
                                v1::AgentState& state) {
  const std::string& victim = rev.key_id();
  if (victim.empty()) return absl::InvalidArgumentError("key revocation names no key");
  if (victim == signer_key_id) {
    return absl::PermissionDeniedError("a key cannot revoke itself; its successor must");
  }
  auto& pinned = *state.mutable_pinned_keys();
  int signer = -1, revoked = -1;
  for (int i = 0; i < pinned.size(); ++i) {
    if (pinned[i].key_id() == signer_key_id) signer = i;
    if (pinned[i].key_id() == victim) revoked = i;
  }
  if (signer < 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("key revocation signed by key ", signer_key_id, ", which is not pinned"));
  }
  if (revoked > signer) {
    // Keys are pinned oldest first: an older key revoking a newer one is what a leaked
    // old key would do.
    return absl::PermissionDeniedError(
        absl::StrCat("key ", signer_key_id, " may not revoke the newer key ", victim));
  }
  if (revoked >= 0) pinned.erase(pinned.begin() + revoked);
  if (!IsKeyRevoked(state, victim)) state.add_revoked_key_ids(victim);
  return absl::OkStatus();
}

bool IsKeyRevoked(const v1::AgentState& state, const std::string& key_id) {
  for (const auto& id : state.revoked_key_ids()) {
    if (id == key_id) return true;
  }
  return false;
}

bool AlreadyApplied(const v1::AgentState& state, const std::string& instruction_id) {
  for (const auto& id : state.applied_instruction_ids()) {
    if (id == instruction_id) return true;
  }
  return false;
}

void RecordOfferOutcome(v1::AgentState& state, v1::OfferOutcome outcome) {
  auto* all = state.mutable_offer_outcomes();
  for (int i = 0; i < all->size(); ++i) {
    if (all->Get(i).instruction_id() == outcome.instruction_id()) {
      all->DeleteSubrange(i, 1);
      break;
    }
  }
  *all->Add() = std::move(outcome);
  if (all->size() > 100) all->DeleteSubrange(0, all->size() - 100);
}

const v1::OfferOutcome* FindOfferOutcome(const v1::AgentState& state,
                                         const std::string& instruction_id) {
  for (const auto& o : state.offer_outcomes()) {
    if (o.instruction_id() == instruction_id) return &o;
  }
  return nullptr;
}

void MarkApplied(v1::AgentState& state, const std::string& instruction_id) {
  state.add_applied_instruction_ids(instruction_id);
  auto* ids = state.mutable_applied_instruction_ids();
  if (ids->size() > 1000) ids->erase(ids->begin(), ids->begin() + (ids->size() - 1000));
}

}  // namespace redflag::agent
