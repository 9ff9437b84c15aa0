// The update-signing key ring (schema `updates`). Starting with a key makes it primary;
// the previous primary stays accepted for a grace period, then is retired. The private
// half exists only in memory (from REDFLAG_SIGNING_PRIVATE_KEY), never in the database.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/crypto.h"
#include "common/pg.h"
#include "redflag/v1/common.pb.h"

namespace redflag::updates {

class KeyRing {
 public:
  KeyRing(PgPool& pool, SigningKey primary) : pool_(pool), primary_(std::move(primary)) {}

  // Records the configured key as primary, demoting any other primary to accepted
  // until now + grace. Safe when several replicas start at once.
  absl::Status Activate(absl::Duration grace);
  // Keys that still verify (primary and accepted within their grace period).
  absl::StatusOr<std::vector<v1::SigningKey>> VerifyingKeys();
  const SigningKey& primary() const { return primary_; }

 private:
  PgPool& pool_;
  SigningKey primary_;
};

}  // namespace redflag::updates
