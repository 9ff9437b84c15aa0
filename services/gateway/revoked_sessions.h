// The sessions this gateway must refuse: revoked sessions (logout, refresh-token reuse)
// learned from auth's WatchRevokedSessions feed, each kept until every access token it
// issued has expired. Access tokens stay stateless on the hot path: one hash lookup.
//
// Bounded: at most `max_entries` sessions. When full even after dropping the expired,
// the set fails closed: it forgets its entries and refuses every token issued before
// that moment (a "watermark"), so holders of live sessions refresh once — nothing revoked
// gets through. Thread-safe.
#pragma once

#include <mutex>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"

namespace redflag::gateway {

class RevokedSessions {
 public:
  explicit RevokedSessions(size_t max_entries = 1'000'000) : max_entries_(max_entries) {}

  // Remembers a revoked session until `forget_after`.
  void Add(const std::string& session_id, absl::Time forget_after, absl::Time now = absl::Now());
  // UNAUTHENTICATED when a token of `session_id` issued at `issued_at` must be refused.
  absl::Status Check(const std::string& session_id, absl::Time issued_at,
                     absl::Time now = absl::Now());
  size_t size();
  // Tokens issued before this are refused (InfinitePast until the set overflowed once).
  absl::Time watermark();

 private:
  void SweepLocked(absl::Time now);
  const size_t max_entries_;
  std::mutex mu_;
  absl::flat_hash_map<std::string, absl::Time> forget_after_;  // guarded by mu_
  absl::Time watermark_ = absl::InfinitePast();                // guarded by mu_
};

}  // namespace redflag::gateway
