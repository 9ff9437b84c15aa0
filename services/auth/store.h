// PostgreSQL schema `auth`: operator accounts, sessions with their refresh tokens
// (hashes only), registration tokens (hashes only) and the seats consumed from them.
// Every method is one transaction; seat consumption is a single atomic UPDATE.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/paging.h"
#include "common/pg.h"
#include "redflag/v1/auth.pb.h"

namespace redflag::auth {

// NOTIFY channel carrying the id of each session revoked (logout, refresh-token reuse).
inline constexpr char kSessionsChannel[] = "redflag_sessions";

struct UserRow {
  std::string id;
  std::string username;
  std::string password_hash;
  std::string role;
};

struct SessionRow {
  std::string session_id;
  std::string subject;
  std::string role;
  std::string audience;
};

enum class RotateOutcome {
  kRotated,
  kRotatedInGrace,
  kUnknown,
  kWrongAudience,  // a session of another kind (agent token on the operator API)
  kWrongSubject,   // the session belongs to another subject than the one expected
  kExpired,
  kRevoked,
  kReused,
};

struct RotateResult {
  RotateOutcome outcome;
  SessionRow session;  // set unless kUnknown
};

// One refresh: which token, what replaces it, and what the caller expects of its session.
struct RotateRequest {
  std::string old_hash;
  std::string new_hash;
  absl::Time new_expires;
  absl::Duration agent_grace;
  std::string audience;  // required
  std::string subject;   // empty: any subject
  bool check_only = false;
};

// Login throttle for one key ("login:<account>@<source>" or "source:<ip>"): failures
// are remembered until `window` passes without one; from the `threshold`-th failure on,
// each failure closes the key for a delay that doubles from `first_delay` up to
// `max_delay`. There is no account-wide lock: a guesser elsewhere never shuts the owner
// out.
struct LockoutPolicy {
  int threshold;
  absl::Duration window;
  absl::Duration first_delay;
  absl::Duration max_delay;
  // The delay after `failures` failures (zero below the threshold).
  absl::Duration DelayAfter(int64_t failures) const;
};

struct TokenLimits {
  int max_active_tokens;
  int max_seats;
};

class AuthStore {
 public:
  explicit AuthStore(PgPool& pool) : pool_(pool) {}

  // The auth schema's migrations in order (applied by redflag-migrate as the owner).
  static const std::vector<std::string>& Migrations();
  absl::Status Migrate();
  // Creates the user unless one with this name exists (first start).
  absl::Status EnsureUser(const std::string& username, const std::string& password_hash,
                          const std::string& role);
  absl::StatusOr<std::optional<UserRow>> FindUser(const std::string& username);
  // ALREADY_EXISTS when the username is taken.
  absl::StatusOr<UserRow> CreateUser(const std::string& username, const std::string& password_hash,
                                     const std::string& role);
  // One page of users in creation order after `after` (the first page: at_us -1), each with
  // its creation time in seconds and its sort key (keys[i] is users[i]'s).
  struct UserPage {
    std::vector<std::pair<UserRow, int64_t>> users;
    std::vector<TimeIdCursor> keys;
  };
  absl::StatusOr<UserPage> ListUsers(const TimeIdCursor& after, int limit);

  // The latest lock expiry among `keys`, if any is locked now.
  absl::StatusOr<std::optional<absl::Time>> LockedUntil(const std::vector<std::string>& keys);
  // Counts a failure; returns the time the key stays closed until when this failure
  // reached the threshold (each further failure closes it for longer).
  absl::StatusOr<std::optional<absl::Time>> RecordFailure(const std::string& key,
                                                          const LockoutPolicy& policy);
  absl::Status ClearFailures(const std::string& key);

  // New session with its first refresh token; returns the session id.
  absl::StatusOr<std::string> CreateSession(const std::string& subject, const std::string& role,
                                            const std::string& audience,
                                            const std::string& refresh_hash,
                                            absl::Time refresh_expires);
  // Replaces `old_hash` by `new_hash`. A session of another audience or subject than the
  // request expects changes nothing (kWrongAudience / kWrongSubject, checked before
  // anything else). Presenting an already-rotated token revokes the whole session
  // (committed even though the caller then refuses the request), except once: an agent
  // session may present its immediately previous token within `agent_grace` of its
  // rotation if the successor was never used (a crash between the server rotating and
  // the agent saving). With `check_only` the outcome is the one a rotation would have,
  // but only the reuse revocation is written.
  absl::StatusOr<RotateResult> RotateRefresh(const RotateRequest& req);
  // Revokes the session owning this refresh token if it belongs to `subject` (nothing
  // happens otherwise) and notifies kSessionsChannel in the same transaction.
  absl::Status RevokeSessionByRefresh(const std::string& refresh_hash, const std::string& subject);
  // Ids of sessions revoked after `since`.
  absl::StatusOr<std::vector<std::string>> RevokedSince(absl::Time since);

  absl::StatusOr<v1::RegistrationToken> CreateRegistrationToken(
      const std::string& token_hash, const std::string& prefix, const std::string& label, int seats,
      absl::Time expires, const std::string& created_by, const TokenLimits& limits);
  // One page of registration tokens in creation order after `after` (the first page:
  // at_us -1), with each row's sort key (keys[i] is tokens[i]'s).
  struct TokenPage {
    std::vector<v1::RegistrationToken> tokens;
    std::vector<TimeIdCursor> keys;
  };
  absl::StatusOr<TokenPage> ListRegistrationTokens(bool include_inactive, const TimeIdCursor& after,
                                                   int limit);
  absl::StatusOr<v1::RegistrationToken> RevokeRegistrationToken(const std::string& id);
  // Consumes one seat atomically; NOT_FOUND / FAILED_PRECONDITION say why it cannot.
  absl::StatusOr<v1::ConsumeRegistrationSeatResponse> ConsumeSeat(const std::string& token_hash,
                                                                  const std::string& machine_id);
  absl::Status ReleaseSeat(const std::string& seat_id);
  PgPool& pool() { return pool_; }

 private:
  PgPool& pool_;
};

}  // namespace redflag::auth
