#include "services/updates/key_ring.h"

#include "absl/strings/str_cat.h"
#include "common/encoding.h"
#include "common/status.h"

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
constexpr Statement kUpsertPrimary{
    "updates_keys_upsert",
    "INSERT INTO updates.signing_keys(key_id, public_key, state) VALUES ($1, $2, 'primary') "
    "ON CONFLICT (key_id) DO UPDATE SET state = 'primary', retire_after = NULL"};
constexpr Statement kVerifying{
    "updates_keys_verifying",
    "SELECT key_id, public_key, state, floor(extract(epoch from created_at))::bigint, "
    "coalesce(floor(extract(epoch from retire_after))::bigint, 0) FROM updates.signing_keys "
    "WHERE state = 'primary' OR (state = 'accepted' AND retire_after > now()) "
    "ORDER BY state = 'primary' DESC, created_at DESC"};

}  // namespace

absl::Status KeyRing::Activate(absl::Duration grace) {
  return pool_.InTransaction([&](PgConnection& c) -> absl::Status {
    REDFLAG_RETURN_IF_ERROR(c.Exec(kLock).status());
    REDFLAG_RETURN_IF_ERROR(
        c.Exec(kDemote, {primary_.KeyId(), absl::StrCat(absl::ToInt64Seconds(grace))}).status());
    REDFLAG_RETURN_IF_ERROR(c.Exec(kRetire).status());
    return c.Exec(kUpsertPrimary, {primary_.KeyId(), HexEncode(primary_.PublicKey())}).status();
  });
}

absl::StatusOr<std::vector<v1::SigningKey>> KeyRing::VerifyingKeys() {
  std::vector<v1::SigningKey> out;
  REDFLAG_RETURN_IF_ERROR(pool_.WithConnection([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kVerifying));
    for (int i = 0; i < r.Rows(); ++i) {
      v1::SigningKey k;
      k.set_key_id(r.Text(i, 0));
      REDFLAG_ASSIGN_OR_RETURN(std::string pk, HexDecode(r.Text(i, 1)));
      k.set_public_key(pk);
      k.set_state(r.Text(i, 2) == "primary" ? v1::SigningKey::PRIMARY : v1::SigningKey::ACCEPTED);
      k.mutable_created_at()->set_seconds(r.Int(i, 3));
      if (r.Int(i, 4) != 0) k.mutable_retire_after()->set_seconds(r.Int(i, 4));
      out.push_back(std::move(k));
    }
    return absl::OkStatus();
  }));
  return out;
}

}  // namespace redflag::updates
