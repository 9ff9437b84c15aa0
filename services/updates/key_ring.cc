#include "services/updates/key_ring.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/encoding.h"
#include "common/log.h"
#include "common/pg_listener.h"
#include "common/status.h"
#include "services/updates/store.h"

namespace redflag::updates {
namespace {

constexpr Statement kLock{"updates_keys_lock", "SELECT pg_advisory_xact_lock(7242683154)"};
constexpr Statement kDemote{"updates_keys_demote",
                            "UPDATE updates.signing_keys SET state = 'accepted', "
                            "retire_after = now() + ($2::bigint * interval '1 second') "
                            "WHERE state = 'primary' AND key_id <> $1"};
constexpr Statement kRetire{"updates_keys_retire",
                            "UPDATE updates.signing_keys SET state = 'retired' "
                            "WHERE state = 'accepted' AND retire_after <= now()"};
constexpr Statement kCurrentPrimary{
    "updates_keys_current", "SELECT key_id FROM updates.signing_keys WHERE state = 'primary'"};
constexpr Statement kUpsertPrimary{
    "updates_keys_upsert",
    "INSERT INTO updates.signing_keys(key_id, public_key, state, endorsement) "
    "VALUES ($1, $2, 'primary', $3) ON CONFLICT (key_id) DO UPDATE SET state = 'primary', "
    "retire_after = NULL, endorsement = CASE WHEN $3 = '' THEN signing_keys.endorsement "
    "ELSE $3 END"};
#define KEY_COLUMNS                                                            \
  "key_id, public_key, state, floor(extract(epoch from created_at))::bigint, " \
  "coalesce(floor(extract(epoch from retire_after))::bigint, 0), endorsement"
constexpr Statement kVerifyingAndRevoked{
    "updates_keys_verifying",
    "SELECT " KEY_COLUMNS
    " FROM updates.signing_keys "
    "WHERE state IN ('primary', 'revoked') OR (state = 'accepted' AND retire_after > now()) "
    "ORDER BY state = 'primary' DESC, created_at DESC"};
constexpr Statement kIsRevoked{
    "updates_keys_is_revoked",
    "SELECT revoked_reason FROM updates.signing_keys WHERE key_id = $1 AND state = 'revoked'"};
constexpr Statement kRevoke{
    "updates_keys_revoke",
    "UPDATE updates.signing_keys SET state = 'revoked', revoked_at = coalesce(revoked_at, now()), "
    "revoked_reason = CASE WHEN state = 'revoked' THEN revoked_reason ELSE $2 END "
    "WHERE key_id = $1 AND state <> 'primary' RETURNING " KEY_COLUMNS};
constexpr Statement kKeyState{"updates_keys_state",
                              "SELECT state FROM updates.signing_keys WHERE key_id = $1"};

absl::StatusOr<v1::SigningKey> KeyFromRow(const PgResult& r, int i) {
  v1::SigningKey k;
  k.set_key_id(r.Text(i, 0));
  REDFLAG_ASSIGN_OR_RETURN(std::string pk, HexDecode(r.Text(i, 1)));
  k.set_public_key(pk);
  const std::string state = r.Text(i, 2);
  k.set_state(state == "primary"   ? v1::SigningKey::PRIMARY
              : state == "revoked" ? v1::SigningKey::REVOKED
              : state == "retired" ? v1::SigningKey::RETIRED
                                   : v1::SigningKey::ACCEPTED);
  k.mutable_created_at()->set_seconds(r.Int(i, 3));
  if (r.Int(i, 4) != 0) k.mutable_retire_after()->set_seconds(r.Int(i, 4));
  if (!r.Text(i, 5).empty()) {
    REDFLAG_ASSIGN_OR_RETURN(std::string env, HexDecode(r.Text(i, 5)));
    if (!k.mutable_endorsement()->ParseFromString(env)) {
      return absl::DataLossError("stored key endorsement does not parse");
    }
  }
  return k;
}

}  // namespace

absl::Status KeyRing::Activate(absl::Duration grace) {
  absl::Status s = pool_.InTransaction([&](PgConnection& c) -> absl::Status {
    REDFLAG_RETURN_IF_ERROR(c.Exec(kLock).status());
    REDFLAG_ASSIGN_OR_RETURN(PgResult revoked, c.Exec(kIsRevoked, {primary_.KeyId()}));
    if (revoked.Rows() > 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("REDFLAG_SIGNING_PRIVATE_KEY is key ", primary_.KeyId(),
                       ", which was revoked (", revoked.Text(0, 0), "); generate a new key"));
    }
    REDFLAG_ASSIGN_OR_RETURN(PgResult current, c.Exec(kCurrentPrimary));
    std::string current_id = current.Rows() == 1 ? current.Text(0, 0) : "";
    std::string endorsement;
    if (previous_ && previous_->KeyId() == primary_.KeyId()) {
      return absl::FailedPreconditionError(
          "REDFLAG_PREVIOUS_SIGNING_PRIVATE_KEY is the same key as REDFLAG_SIGNING_PRIVATE_KEY");
    }
    if (previous_) {
      if (current_id != previous_->KeyId() && current_id != primary_.KeyId()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "REDFLAG_PREVIOUS_SIGNING_PRIVATE_KEY is key ", previous_->KeyId(),
            " but the current primary is ", current_id.empty() ? "(none)" : current_id));
      }
      if (current_id == previous_->KeyId()) {
        v1::SigningKey endorsed;
        endorsed.set_key_id(primary_.KeyId());
        endorsed.set_public_key(primary_.PublicKey());
        endorsement =
            HexEncode(SignEnvelope(*previous_, kEndorsementType, endorsed.SerializeAsString())
                          .SerializeAsString());
      }
    } else if (!current_id.empty() && current_id != primary_.KeyId()) {
      LogWarn(absl::StrCat("signing key changed from ", current_id, " to ", primary_.KeyId(),
                           " without REDFLAG_PREVIOUS_SIGNING_PRIVATE_KEY: agents that pinned ",
                           current_id, " cannot be told to trust the new key"));
    }
    REDFLAG_RETURN_IF_ERROR(
        c.Exec(kDemote, {primary_.KeyId(), absl::StrCat(absl::ToInt64Seconds(grace))}).status());
    REDFLAG_RETURN_IF_ERROR(c.Exec(kRetire).status());
    REDFLAG_RETURN_IF_ERROR(
        c.Exec(kUpsertPrimary, {primary_.KeyId(), HexEncode(primary_.PublicKey()), endorsement})
            .status());
    // Every replica's ring in memory refreshes (and gateways announce the key to agents).
    return Notify(c, kUpdatesChannel, absl::StrCat("key_rotated:", primary_.KeyId()));
  });
  Invalidate();
  return s;
}

absl::StatusOr<std::vector<v1::SigningKey>> KeyRing::VerifyingAndRevokedKeys() {
  const absl::Time now = absl::Now();
  uint64_t generation = 0;
  std::vector<v1::SigningKey> keys;
  bool hit = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    generation = generation_;
    hit = cached_.has_value() && now - cached_at_ < kMaxAge;
    if (hit) keys = *cached_;
  }
  if (!hit) {
    REDFLAG_RETURN_IF_ERROR(pool_.WithConnection([&](PgConnection& c) -> absl::Status {
      REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kVerifyingAndRevoked));
      for (int i = 0; i < r.Rows(); ++i) {
        REDFLAG_ASSIGN_OR_RETURN(v1::SigningKey k, KeyFromRow(r, i));
        keys.push_back(std::move(k));
      }
      return absl::OkStatus();
    }));
    std::lock_guard<std::mutex> lock(mu_);
    ++loads_;
    if (generation == generation_) {  // no Invalidate meanwhile: what was read is current
      cached_ = keys;
      cached_at_ = now;
    }
  }
  // An accepted key stops verifying when its grace ends, cached or not.
  keys.erase(std::remove_if(keys.begin(), keys.end(),
                            [&](const v1::SigningKey& k) {
                              return k.state() == v1::SigningKey::ACCEPTED &&
                                     k.has_retire_after() &&
                                     absl::FromUnixSeconds(k.retire_after().seconds()) <= now;
                            }),
             keys.end());
  return keys;
}

void KeyRing::Invalidate() {
  std::lock_guard<std::mutex> lock(mu_);
  ++generation_;
  cached_.reset();
}

int64_t KeyRing::loads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return loads_;
}

absl::StatusOr<std::vector<v1::SigningKey>> KeyRing::VerifyingKeys() {
  REDFLAG_ASSIGN_OR_RETURN(std::vector<v1::SigningKey> keys, VerifyingAndRevokedKeys());
  keys.erase(
      std::remove_if(keys.begin(), keys.end(),
                     [](const v1::SigningKey& k) { return k.state() == v1::SigningKey::REVOKED; }),
      keys.end());
  return keys;
}

absl::StatusOr<v1::SigningKey> KeyRing::Revoke(const std::string& key_id, const std::string& reason,
                                               const std::string& channel) {
  v1::SigningKey out;
  REDFLAG_RETURN_IF_ERROR(pool_.InTransaction([&](PgConnection& c) -> absl::Status {
    REDFLAG_RETURN_IF_ERROR(c.Exec(kLock).status());
    REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kRevoke, {key_id, reason}));
    if (r.Rows() == 0) {
      REDFLAG_ASSIGN_OR_RETURN(PgResult st, c.Exec(kKeyState, {key_id}));
      if (st.Rows() == 0) return absl::NotFoundError(absl::StrCat("no signing key ", key_id));
      return absl::FailedPreconditionError(absl::StrCat(
          "key ", key_id,
          " is the primary signing key; rotate to a new key (REDFLAG_SIGNING_PRIVATE_KEY with "
          "REDFLAG_PREVIOUS_SIGNING_PRIVATE_KEY) first, then revoke it"));
    }
    REDFLAG_ASSIGN_OR_RETURN(out, KeyFromRow(r, 0));
    return Notify(c, channel, absl::StrCat("key_revoked:", key_id));
  }));
  Invalidate();
  return out;
}

}  // namespace redflag::updates
