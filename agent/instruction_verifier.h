// Decides whether a signed server→agent instruction may be applied: signed by a pinned key
// (domain-separated as redflag.v1.Instruction) — or, for a key announcement only, by the
// announced key carrying an endorsement from a pinned key — addressed to this agent,
// issued within the freshness window the instruction itself carries (valid_for_seconds, the
// operators' setting, bounded to 1..15 minutes; 5 minutes when absent) plus a 30 s
// clock-skew allowance, and carrying a nonce not seen before. Accepted nonces are remembered in the
// agent state. Nothing signed or endorsed by a revoked key is accepted.
#pragma once

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "redflag/v1/agent_state.pb.h"
#include "redflag/v1/updates.pb.h"

namespace redflag::agent {

inline constexpr absl::Duration kFreshness = absl::Minutes(5);  // when not carried
inline constexpr absl::Duration kMinFreshness = absl::Minutes(1);
inline constexpr absl::Duration kMaxFreshness = absl::Minutes(15);  // nonces kept this long
inline constexpr absl::Duration kClockSkew = absl::Seconds(30);

// PERMISSION_DENIED (key, signature, addressee) or FAILED_PRECONDITION (stale, replayed)
// with the reason; on success the nonce is recorded in `state` (caller persists it).
absl::StatusOr<v1::Instruction> VerifyInstruction(const v1::SignedEnvelope& envelope,
                                                  v1::AgentState& state, absl::Time now);

// Applies a verified key revocation signed by `signer_key_id`: the signer must be pinned
// and newer than the revoked key (pinned after it), never the revoked key itself. On
// success the key leaves the pinned list and joins revoked_key_ids (caller persists).
absl::Status ApplyKeyRevocation(const std::string& signer_key_id, const v1::KeyRevocation& rev,
                                v1::AgentState& state);
bool IsKeyRevoked(const v1::AgentState& state, const std::string& key_id);
// The window an instruction may be accepted in: its valid_for_seconds bounded to
// [kMinFreshness, kMaxFreshness], kFreshness when it carries none.
absl::Duration FreshnessOf(const v1::Instruction& in);

// Whether this instruction id was applied before (at-most-once across reconnects).
bool AlreadyApplied(const v1::AgentState& state, const std::string& instruction_id);
// Records an applied id, keeping the most recent 1000.
void MarkApplied(v1::AgentState& state, const std::string& instruction_id);
// Records how an applied offer went (replacing an earlier record of the same instruction),
// keeping the most recent 100.
void RecordOfferOutcome(v1::AgentState& state, v1::OfferOutcome outcome);
// How the offer `instruction_id` went, or null when it is not recorded.
const v1::OfferOutcome* FindOfferOutcome(const v1::AgentState& state,
                                         const std::string& instruction_id);

}  // namespace redflag::agent
