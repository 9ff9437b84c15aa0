// The update-signing key ring (schema `updates`). Starting with a key makes it primary;
// the previous primary stays accepted for a grace period, then is retired. The private
// half exists only in memory (from REDFLAG_SIGNING_PRIVATE_KEY), never in the database.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/crypto.h"
#include "common/pg.h"
#include "redflag/v1/common.pb.h"

namespace redflag::updates {

inline constexpr char kEndorsementType[] = "redflag.v1.KeyEndorsement";

class KeyRing {
 public:
  // `previous`, when given, is the key being replaced: it endorses the new primary so
  // agents that pinned it accept the new one.
  KeyRing(PgPool& pool, SigningKey primary, std::optional<SigningKey> previous = std::nullopt)
      : pool_(pool), primary_(std::move(primary)), previous_(std::move(previous)) {}

  // Records the configured key as primary, demoting any other primary to accepted
  // until now + grace, and stores the previous key's endorsement of it. FAILED_PRECONDITION
  // when a previous key is given that is not the current primary, or when the configured
  // key was revoked. Safe when several replicas start at once.
  absl::Status Activate(absl::Duration grace);
  // Keys that still verify (primary and accepted within their grace period).
  absl::StatusOr<std::vector<v1::SigningKey>> VerifyingKeys();
  // The verifying keys and the revoked ones (state REVOKED). Served from memory: read from
  // PostgreSQL on first use, after Invalidate() (key events from any replica: key_rotated,
  // key_revoked, a gap in the feed) and at least every kMaxAge; a grace period that ends is
  // applied from memory.
  absl::StatusOr<std::vector<v1::SigningKey>> VerifyingAndRevokedKeys();
  // The ring changed (here or on another replica): the next read goes to the database.
  void Invalidate();
  // Reads from the database so far (for tests).
  int64_t loads() const;
  static constexpr absl::Duration kMaxAge = absl::Seconds(30);
  // Revokes a key that is not the primary (FAILED_PRECONDITION for the primary, NOT_FOUND
  // for an unknown id) and notifies every replica on `channel`; revoking twice keeps the
  // first reason. Returns the key as now stored.
  absl::StatusOr<v1::SigningKey> Revoke(const std::string& key_id, const std::string& reason,
                                        const std::string& channel);
  const SigningKey& primary() const { return primary_; }

 private:
  PgPool& pool_;
  SigningKey primary_;
  std::optional<SigningKey> previous_;

  mutable std::mutex mu_;
  uint64_t generation_ = 0;  // bumped by Invalidate, so a read racing it is not kept
  std::optional<std::vector<v1::SigningKey>> cached_;
  absl::Time cached_at_;
  int64_t loads_ = 0;
};

}  // namespace redflag::updates
