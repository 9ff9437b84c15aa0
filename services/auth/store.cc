#include "services/auth/store.h"

#include "absl/strings/str_cat.h"
#include "common/crypto.h"
#include "common/jwt.h"
#include "common/pg_listener.h"
#include "common/status.h"

namespace redflag::auth {
namespace {

const std::vector<std::string> kMigrations = {R"sql(
CREATE TABLE auth.users (
  id uuid PRIMARY KEY,
  username text NOT NULL UNIQUE,
  password_hash text NOT NULL,
  role text NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE auth.sessions (
  id uuid PRIMARY KEY,
  subject text NOT NULL,
  role text NOT NULL,
  audience text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz
);
CREATE TABLE auth.refresh_tokens (
  token_hash text PRIMARY KEY,
  session_id uuid NOT NULL REFERENCES auth.sessions(id),
  issued_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  rotated_at timestamptz
);
CREATE INDEX refresh_tokens_session_idx ON auth.refresh_tokens(session_id);
CREATE TABLE auth.registration_tokens (
  id uuid PRIMARY KEY,
  token_hash text NOT NULL UNIQUE,
  prefix text NOT NULL,
  label text NOT NULL,
  seats_total integer NOT NULL CHECK (seats_total > 0),
  seats_used integer NOT NULL DEFAULT 0 CHECK (seats_used >= 0 AND seats_used <= seats_total),
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz,
  created_by text NOT NULL
);
CREATE TABLE auth.registration_seats (
  id uuid PRIMARY KEY,
  token_id uuid NOT NULL REFERENCES auth.registration_tokens(id),
  machine_id text NOT NULL,
  used_at timestamptz NOT NULL DEFAULT now(),
  released_at timestamptz
);
)sql",
                                              R"sql(
ALTER TABLE auth.refresh_tokens ADD COLUMN replaced_by text,
  ADD COLUMN grace_used boolean NOT NULL DEFAULT false;
CREATE TABLE auth.login_failures (
  key text PRIMARY KEY,
  failures integer NOT NULL,
  window_started timestamptz NOT NULL,
  locked_until timestamptz
);
)sql",
                                              R"sql(
CREATE INDEX sessions_revoked_idx ON auth.sessions(revoked_at) WHERE revoked_at IS NOT NULL;
)sql"};

#define MICROS(col) "floor(extract(epoch from " col ") * 1000000)::bigint"
constexpr char kTokenColumns[] = "id, label, prefix, seats_total, seats_used, " MICROS(
    "created_at") ", " MICROS("expires_at") ", revoked_at IS NOT NULL, created_by";

constexpr Statement kEnsureUser{
    "auth_ensure_user",
    "INSERT INTO auth.users(id, username, password_hash, role) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (username) DO NOTHING"};
constexpr Statement kFindUser{
    "auth_find_user",
    "SELECT id, username, password_hash, role FROM auth.users WHERE username = $1"};
constexpr Statement kCreateSession{
    "auth_create_session",
    "INSERT INTO auth.sessions(id, subject, role, audience) VALUES ($1, $2, $3, $4)"};
constexpr Statement kInsertRefresh{
    "auth_insert_refresh",
    "INSERT INTO auth.refresh_tokens(token_hash, session_id, expires_at) "
    "VALUES ($1, $2, to_timestamp($3::double precision / 1000000))"};
constexpr Statement kLockRefresh{
    "auth_lock_refresh",
    "SELECT r.session_id, s.subject, s.role, s.audience, r.rotated_at IS NOT NULL, "
    "r.expires_at <= now(), s.revoked_at IS NOT NULL, "
    "coalesce(r.rotated_at > now() - $2::bigint * interval '1 microsecond', false), "
    "r.grace_used, (n.token_hash IS NOT NULL AND n.rotated_at IS NULL) "
    "FROM auth.refresh_tokens r JOIN auth.sessions s ON s.id = r.session_id "
    "LEFT JOIN auth.refresh_tokens n ON n.token_hash = r.replaced_by "
    "WHERE r.token_hash = $1 FOR UPDATE OF r, s"};
constexpr Statement kMarkRotated{
    "auth_mark_rotated",
    "UPDATE auth.refresh_tokens SET rotated_at = coalesce(rotated_at, now()), replaced_by = $2 "
    "WHERE token_hash = $1"};
// The grace use: the old token is spent for good, its unused successor retired.
constexpr Statement kUseGrace{
    "auth_use_grace",
    "WITH old AS (UPDATE auth.refresh_tokens SET grace_used = true, replaced_by = $2 "
    "  WHERE token_hash = $1 RETURNING 1) "
    "UPDATE auth.refresh_tokens SET rotated_at = now() "
    "WHERE token_hash = (SELECT replaced_by FROM auth.refresh_tokens WHERE token_hash = $1) "
    "AND rotated_at IS NULL"};
constexpr Statement kCreateUser{
    "auth_create_user",
    "INSERT INTO auth.users(id, username, password_hash, role) VALUES ($1, $2, $3, $4) "
    "RETURNING id, username, password_hash, role"};
constexpr Statement kListUsers{
    "auth_list_users",
    "SELECT id, username, '', role, floor(extract(epoch from created_at))::bigint, "
    "floor(extract(epoch from created_at) * 1000000)::bigint FROM auth.users "
    "WHERE " REDFLAG_AFTER_TIME_ID("created_at", "id", "$1",
                                   "$2") " ORDER BY created_at, id LIMIT $3"};
constexpr Statement kLockedUntil{
    "auth_locked_until",
    "SELECT floor(extract(epoch from max(locked_until)) * 1000000)::bigint "
    "FROM auth.login_failures WHERE key = " REDFLAG_ANY_OF_JSON("$1") " "
    "AND locked_until > now()"};
// window_started holds the time of the latest failure: a quiet `window` forgets the count.
constexpr Statement kCountFailure{
    "auth_count_failure",
    "INSERT INTO auth.login_failures AS f (key, failures, window_started) VALUES ($1, 1, now()) "
    "ON CONFLICT (key) DO UPDATE SET "
    "failures = CASE WHEN f.window_started < now() - $2::bigint * interval '1 microsecond' "
    "  THEN 1 ELSE f.failures + 1 END, "
    "window_started = now() "
    "RETURNING failures"};
constexpr Statement kLockKey{
    "auth_lock_key",
    "UPDATE auth.login_failures SET locked_until = now() + $2::bigint * interval '1 microsecond' "
    "WHERE key = $1 RETURNING floor(extract(epoch from locked_until) * 1000000)::bigint"};
constexpr Statement kClearFailures{"auth_clear_failures",
                                   "DELETE FROM auth.login_failures WHERE key = $1"};
constexpr Statement kRevokeSession{
    "auth_revoke_session",
    "UPDATE auth.sessions SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1"};
constexpr Statement kRevokeByRefresh{
    "auth_revoke_by_refresh",
    "UPDATE auth.sessions SET revoked_at = coalesce(revoked_at, now()) WHERE id = "
    "(SELECT session_id FROM auth.refresh_tokens WHERE token_hash = $1) AND subject = $2 "
    "RETURNING id"};
constexpr Statement kRevokedSince{"auth_revoked_since",
                                  "SELECT id FROM auth.sessions WHERE revoked_at IS NOT NULL AND "
                                  "revoked_at > to_timestamp($1::double precision / 1000000)"};
constexpr Statement kLockTokens{"auth_lock_tokens", "SELECT pg_advisory_xact_lock(7242683153)"};
constexpr Statement kCountActive{
    "auth_count_active",
    "SELECT count(*) FROM auth.registration_tokens WHERE revoked_at IS NULL AND "
    "expires_at > now() AND seats_used < seats_total"};
const std::string kCreateTokenSql = absl::StrCat(
    "INSERT INTO auth.registration_tokens(id, token_hash, prefix, label, seats_total, "
    "expires_at, created_by) VALUES ($1, $2, $3, $4, $5, to_timestamp($6::double precision / "
    "1000000), $7) RETURNING ",
    kTokenColumns);
const Statement kCreateToken{"auth_create_token", kCreateTokenSql.c_str()};
// $1 include inactive; pages in creation order after ($2 microseconds, $3 id), $4 rows.
const std::string kListTokensSql = absl::StrCat(
    "SELECT ", kTokenColumns,
    " FROM auth.registration_tokens WHERE ($1 OR (revoked_at IS NULL AND expires_at > now() "
    "AND seats_used < seats_total)) AND " REDFLAG_AFTER_TIME_ID(
        "created_at", "id", "$2", "$3") " ORDER BY created_at, id LIMIT $4");
const Statement kListTokens{"auth_list_tokens", kListTokensSql.c_str()};
const std::string kRevokeTokenSql = absl::StrCat(
    "UPDATE auth.registration_tokens SET revoked_at = coalesce(revoked_at, now()) "
    "WHERE id = $1 RETURNING ",
    kTokenColumns);
const Statement kRevokeToken{"auth_revoke_token", kRevokeTokenSql.c_str()};
// One statement: the row lock taken by UPDATE makes concurrent consumers queue, and
// the WHERE clause re-checks seats after the wait, so K seats yield exactly K winners.
constexpr Statement kConsumeSeat{
    "auth_consume_seat",
    "WITH t AS (UPDATE auth.registration_tokens SET seats_used = seats_used + 1 "
    "  WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > now() "
    "  AND seats_used < seats_total RETURNING id) "
    "INSERT INTO auth.registration_seats(id, token_id, machine_id) "
    "SELECT $2, id, $3 FROM t RETURNING token_id"};
constexpr Statement kWhyNoSeat{
    "auth_why_no_seat",
    "SELECT revoked_at IS NOT NULL, expires_at <= now(), seats_used >= seats_total "
    "FROM auth.registration_tokens WHERE token_hash = $1"};
constexpr Statement kReleaseSeat{
    "auth_release_seat",
    "WITH s AS (UPDATE auth.registration_seats SET released_at = now() "
    "  WHERE id = $1 AND released_at IS NULL RETURNING token_id) "
    "UPDATE auth.registration_tokens SET seats_used = seats_used - 1 "
    "WHERE id = (SELECT token_id FROM s)"};

v1::RegistrationToken TokenFromRow(const PgResult& r, int i) {
  v1::RegistrationToken t;
  t.set_id(r.Text(i, 0));
  t.set_label(r.Text(i, 1));
  t.set_prefix(r.Text(i, 2));
  t.set_seats_total(static_cast<int32_t>(r.Int(i, 3)));
  t.set_seats_used(static_cast<int32_t>(r.Int(i, 4)));
  t.mutable_created_at()->set_seconds(r.Int(i, 5) / 1000000);
  t.mutable_expires_at()->set_seconds(r.Int(i, 6) / 1000000);
  t.set_revoked(r.Bool(i, 7));
  t.set_created_by(r.Text(i, 8));
  return t;
}

std::string Micros(absl::Time t) { return absl::StrCat(absl::ToUnixMicros(t)); }

}  // namespace

const std::vector<std::string>& AuthStore::Migrations() { return kMigrations; }
absl::Status AuthStore::Migrate() { return ApplyMigrations(pool_, "auth", kMigrations); }

absl::Status AuthStore::EnsureUser(const std::string& username, const std::string& hash,
                                   const std::string& role) {
  return pool_.WithConnection([&](PgConnection& c) {
    return c.Exec(kEnsureUser, {RandomUuid(), username, hash, role}).status();
  });
}

absl::StatusOr<std::optional<UserRow>> AuthStore::FindUser(const std::string& username) {
  std::optional<UserRow> out;
  REDFLAG_RETURN_IF_ERROR(pool_.WithConnection([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kFindUser, {username}));
    if (r.Rows() == 1) out = UserRow{r.Text(0, 0), r.Text(0, 1), r.Text(0, 2), r.Text(0, 3)};
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::string> AuthStore::CreateSession(const std::string& subject,
                                                     const std::string& role,
                                                     const std::string& audience,
                                                     const std::string& refresh_hash,
                                                     absl::Time refresh_expires) {
  std::string id = RandomUuid();
  REDFLAG_RETURN_IF_ERROR(pool_.InTransaction([&](PgConnection& c) -> absl::Status {
    REDFLAG_RETURN_IF_ERROR(c.Exec(kCreateSession, {id, subject, role, audience}).status());
    return c.Exec(kInsertRefresh, {refresh_hash, id, Micros(refresh_expires)}).status();
  }));
  return id;
}

absl::StatusOr<RotateResult> AuthStore::RotateRefresh(const RotateRequest& req) {
  RotateResult result{RotateOutcome::kUnknown, {}};
  REDFLAG_RETURN_IF_ERROR(pool_.InTransaction([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(
        PgResult r,
        c.Exec(kLockRefresh,
               {req.old_hash, absl::StrCat(absl::ToInt64Microseconds(req.agent_grace))}));
    if (r.Rows() == 0) return absl::OkStatus();
    result.session = SessionRow{r.Text(0, 0), r.Text(0, 1), r.Text(0, 2), r.Text(0, 3)};
    bool rotated = r.Bool(0, 4), expired = r.Bool(0, 5), revoked = r.Bool(0, 6);
    bool within_grace = r.Bool(0, 7), grace_used = r.Bool(0, 8), successor_unused = r.Bool(0, 9);
    auto issue_new = [&]() {
      return c
          .Exec(kInsertRefresh, {req.new_hash, result.session.session_id, Micros(req.new_expires)})
          .status();
    };
    // Whose session this is comes first: a token presented to the wrong door proves
    // nothing about the caller there, so it must not spend or revoke anything.
    if (result.session.audience != req.audience) {
      result.outcome = RotateOutcome::kWrongAudience;
    } else if (!req.subject.empty() && result.session.subject != req.subject) {
      result.outcome = RotateOutcome::kWrongSubject;
    } else if (revoked) {
      result.outcome = RotateOutcome::kRevoked;
    } else if (expired) {
      result.outcome = RotateOutcome::kExpired;
    } else if (!rotated) {
      result.outcome = RotateOutcome::kRotated;
      if (req.check_only) return absl::OkStatus();
      REDFLAG_RETURN_IF_ERROR(issue_new());
      return c.Exec(kMarkRotated, {req.old_hash, req.new_hash}).status();
    } else if (result.session.audience == kAgentAudience && within_grace && !grace_used &&
               successor_unused) {
      result.outcome = RotateOutcome::kRotatedInGrace;
      if (req.check_only) return absl::OkStatus();
      REDFLAG_RETURN_IF_ERROR(issue_new());
      return c.Exec(kUseGrace, {req.old_hash, req.new_hash}).status();
    } else {
      // A rotated token came back: someone holds a copy. Kill the whole family.
      result.outcome = RotateOutcome::kReused;
      REDFLAG_RETURN_IF_ERROR(c.Exec(kRevokeSession, {result.session.session_id}).status());
      return Notify(c, kSessionsChannel, result.session.session_id);
    }
    return absl::OkStatus();
  }));
  return result;
}

absl::StatusOr<UserRow> AuthStore::CreateUser(const std::string& username,
                                              const std::string& password_hash,
                                              const std::string& role) {
  UserRow out;
  REDFLAG_RETURN_IF_ERROR(pool_.WithConnection([&](PgConnection& c) -> absl::Status {
    absl::StatusOr<PgResult> r = c.Exec(kCreateUser, {RandomUuid(), username, password_hash, role});
    if (r.status().code() == absl::StatusCode::kAlreadyExists) {
      return absl::AlreadyExistsError(absl::StrCat("user \"", username, "\" already exists"));
    }
    if (!r.ok()) return r.status();
    out = UserRow{r->Text(0, 0), r->Text(0, 1), "", r->Text(0, 3)};
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<AuthStore::UserPage> AuthStore::ListUsers(const TimeIdCursor& after, int limit) {
  UserPage out;
  REDFLAG_RETURN_IF_ERROR(pool_.WithConnection([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(
        PgResult r, c.Exec(kListUsers, {absl::StrCat(after.at_us), after.id, absl::StrCat(limit)}));
    for (int i = 0; i < r.Rows(); ++i) {
      out.users.push_back({UserRow{r.Text(i, 0), r.Text(i, 1), "", r.Text(i, 3)}, r.Int(i, 4)});
      out.keys.push_back({r.Int(i, 5), r.Text(i, 0)});
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::optional<absl::Time>> AuthStore::LockedUntil(
    const std::vector<std::string>& keys) {
  std::optional<absl::Time> out;
  std::string json = "[";
  for (size_t i = 0; i < keys.size(); ++i) absl::StrAppend(&json, i ? "," : "", JsonQuote(keys[i]));
  json += "]";
  REDFLAG_RETURN_IF_ERROR(pool_.WithConnection([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kLockedUntil, {json}));
    if (r.Rows() == 1 && !r.IsNull(0, 0)) out = r.TimeFromMicros(0, 0);
    return absl::OkStatus();
  }));
  return out;
}

absl::Duration LockoutPolicy::DelayAfter(int64_t failures) const {
  if (failures < threshold) return absl::ZeroDuration();
  absl::Duration d = first_delay;
  for (int64_t i = threshold; i < failures && d < max_delay; ++i) d *= 2;
  return std::min(d, max_delay);
}

absl::StatusOr<std::optional<absl::Time>> AuthStore::RecordFailure(const std::string& key,
                                                                   const LockoutPolicy& policy) {
  std::optional<absl::Time> locked;
  REDFLAG_RETURN_IF_ERROR(pool_.InTransaction([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(
        PgResult n,
        c.Exec(kCountFailure, {key, absl::StrCat(absl::ToInt64Microseconds(policy.window))}));
    absl::Duration delay = policy.DelayAfter(n.Int(0, 0));
    if (delay <= absl::ZeroDuration()) return absl::OkStatus();
    REDFLAG_ASSIGN_OR_RETURN(
        PgResult l, c.Exec(kLockKey, {key, absl::StrCat(absl::ToInt64Microseconds(delay))}));
    if (l.Rows() == 1) locked = l.TimeFromMicros(0, 0);
    return absl::OkStatus();
  }));
  return locked;
}

absl::Status AuthStore::ClearFailures(const std::string& key) {
  return pool_.WithConnection(
      [&](PgConnection& c) { return c.Exec(kClearFailures, {key}).status(); });
}

absl::Status AuthStore::RevokeSessionByRefresh(const std::string& refresh_hash,
                                               const std::string& subject) {
  return pool_.InTransaction([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kRevokeByRefresh, {refresh_hash, subject}));
    if (r.Rows() == 0) return absl::OkStatus();
    return Notify(c, kSessionsChannel, r.Text(0, 0));
  });
}

absl::StatusOr<std::vector<std::string>> AuthStore::RevokedSince(absl::Time since) {
  std::vector<std::string> out;
  REDFLAG_RETURN_IF_ERROR(pool_.WithConnection([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kRevokedSince, {Micros(since)}));
    for (int i = 0; i < r.Rows(); ++i) out.push_back(r.Text(i, 0));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::RegistrationToken> AuthStore::CreateRegistrationToken(
    const std::string& token_hash, const std::string& prefix, const std::string& label, int seats,
    absl::Time expires, const std::string& created_by, const TokenLimits& limits) {
  v1::RegistrationToken out;
  REDFLAG_RETURN_IF_ERROR(pool_.InTransaction([&](PgConnection& c) -> absl::Status {
    REDFLAG_RETURN_IF_ERROR(c.Exec(kLockTokens).status());
    REDFLAG_ASSIGN_OR_RETURN(PgResult n, c.Exec(kCountActive));
    if (n.Int(0, 0) >= limits.max_active_tokens) {
      return absl::ResourceExhaustedError(
          absl::StrCat("there are already ", n.Int(0, 0), " active registration tokens (limit ",
                       limits.max_active_tokens, ", REDFLAG_MAX_TOKENS); revoke one first"));
    }
    REDFLAG_ASSIGN_OR_RETURN(
        PgResult r, c.Exec(kCreateToken, {RandomUuid(), token_hash, prefix, label,
                                          absl::StrCat(seats), Micros(expires), created_by}));
    out = TokenFromRow(r, 0);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<AuthStore::TokenPage> AuthStore::ListRegistrationTokens(bool include_inactive,
                                                                       const TimeIdCursor& after,
                                                                       int limit) {
  TokenPage out;
  REDFLAG_RETURN_IF_ERROR(pool_.WithConnection([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kListTokens, {include_inactive ? "true" : "false",
                                                              absl::StrCat(after.at_us), after.id,
                                                              absl::StrCat(limit)}));
    for (int i = 0; i < r.Rows(); ++i) {
      out.tokens.push_back(TokenFromRow(r, i));
      out.keys.push_back({r.Int(i, 5), r.Text(i, 0)});
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::RegistrationToken> AuthStore::RevokeRegistrationToken(const std::string& id) {
  v1::RegistrationToken out;
  REDFLAG_RETURN_IF_ERROR(pool_.WithConnection([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kRevokeToken, {id}));
    if (r.Rows() == 0) return absl::NotFoundError(absl::StrCat("no registration token ", id));
    out = TokenFromRow(r, 0);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::ConsumeRegistrationSeatResponse> AuthStore::ConsumeSeat(
    const std::string& token_hash, const std::string& machine_id) {
  v1::ConsumeRegistrationSeatResponse out;
  std::string seat_id = RandomUuid();
  REDFLAG_RETURN_IF_ERROR(pool_.WithConnection([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kConsumeSeat, {token_hash, seat_id, machine_id}));
    if (r.Rows() == 1) {
      out.set_token_id(r.Text(0, 0));
      out.set_seat_id(seat_id);
      return absl::OkStatus();
    }
    REDFLAG_ASSIGN_OR_RETURN(PgResult why, c.Exec(kWhyNoSeat, {token_hash}));
    if (why.Rows() == 0) return absl::UnauthenticatedError("registration token not recognised");
    if (why.Bool(0, 0)) return absl::FailedPreconditionError("registration token was revoked");
    if (why.Bool(0, 1)) return absl::FailedPreconditionError("registration token has expired");
    return absl::ResourceExhaustedError("registration token has no seats left");
  }));
  return out;
}

absl::Status AuthStore::ReleaseSeat(const std::string& seat_id) {
  return pool_.WithConnection(
      [&](PgConnection& c) { return c.Exec(kReleaseSeat, {seat_id}).status(); });
}

}  // namespace redflag::auth
