#include "services/auth/service.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/actor.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "common/log.h"
#include "common/paging.h"
#include "common/status.h"
#include "common/validate.h"
#include "services/auth/password.h"

namespace redflag::auth {
namespace {

constexpr char kRefreshPrefix[] = "rf_rt_";
constexpr char kRegistrationPrefix[] = "rf_reg_";
constexpr size_t kShownPrefix = 12;

std::string NewSecret(const char* prefix) {
  return absl::StrCat(prefix, Base64UrlEncode(RandomBytes(32)));
}

void SetTime(google::protobuf::Timestamp* ts, absl::Time t) {
  ts->set_seconds(absl::ToUnixSeconds(t));
}

// Throttle keys. The account's key is per source: failures elsewhere never close it here.
std::string AccountSourceKey(const grpc::ServerContext& ctx, const std::string& username) {
  return absl::StrCat("login:", username, "@", SourceIp(ActorFromMetadata(ctx).source));
}

std::string SourceKey(const grpc::ServerContext& ctx) {
  return "source:" + SourceIp(ActorFromMetadata(ctx).source);
}

absl::Status LockedOut(absl::Time until) {
  absl::Duration left = std::max(until - absl::Now(), absl::Seconds(1));
  return WithRetryDelay(
      absl::ResourceExhaustedError(absl::StrCat("too many failed attempts; try again in ",
                                                absl::ToInt64Seconds(left) + 1, " s")),
      left);
}

v1::Role RoleEnum(const std::string& role) {
  if (role == "admin") return v1::ADMIN;
  if (role == "operator") return v1::OPERATOR;
  if (role == "viewer") return v1::VIEWER;
  return v1::ROLE_UNSPECIFIED;
}

}  // namespace

AuthServiceImpl::AuthServiceImpl(AuthStore& store, const JwtCodec& jwt,
                                 const SecurityEventWriter& events, prometheus::Registry& metrics,
                                 EventHub& hub, AuthSettings settings)
    : store_(store),
      hub_(hub),
      jwt_(jwt),
      events_(events),
      failures_(prometheus::BuildCounter()
                    .Name("redflag_auth_failures_total")
                    .Help("Authentication failures by reason")
                    .Register(metrics)),
      seats_consumed_(prometheus::BuildCounter()
                          .Name("redflag_registration_seats_consumed_total")
                          .Help("Registration token seats consumed by agent registrations")
                          .Register(metrics)
                          .Add({})),
      audit_verified_(prometheus::BuildGauge()
                          .Name("redflag_audit_chain_verified")
                          .Help("1 when the last full verification of the audit trail's hash "
                                "chain found it intact, 0 when it found a bad event")
                          .Register(metrics)
                          .Add({})),
      audit_events_verified_(prometheus::BuildGauge()
                                 .Name("redflag_audit_chain_events_verified")
                                 .Help("Events checked by the last full verification")
                                 .Register(metrics)
                                 .Add({})),
      settings_(settings) {
  audit_verified_.Set(1);  // until a verification says otherwise
}

grpc::Status AuthServiceImpl::Fail(const grpc::ServerContext& ctx, const std::string& reason,
                                   const std::string& actor, const absl::Status& status) {
  failures_.Add({{"reason", reason}}).Increment();
  RecordEvent(ctx, "AUTH_FAILURE", actor, absl::StrCat("{\"reason\":", JsonQuote(reason), "}"));
  return ToGrpcStatus(status);
}

void AuthServiceImpl::RecordEvent(const grpc::ServerContext& ctx, const std::string& type,
                                  const std::string& actor, const std::string& detail_json) {
  absl::Status s = events_.Record({type, actor, ActorFromMetadata(ctx).source, detail_json});
  if (!s.ok()) LogError(absl::StrCat("cannot record ", type, ": ", s.message()));
}

void AuthServiceImpl::CountFailedLogin(const grpc::ServerContext& ctx,
                                       const std::string& username) {
  // The account name is recorded whether or not it exists; the reply never says which.
  auto count = [&](const std::string& key, const LockoutPolicy& policy, const char* scope) {
    absl::StatusOr<std::optional<absl::Time>> until = store_.RecordFailure(key, policy);
    if (!until.ok()) {
      LogError(absl::StrCat("cannot count a failed login: ", until.status().message()));
    } else if (until->has_value()) {
      RecordEvent(ctx, "LOGIN_THROTTLED", username,
                  absl::StrCat("{\"scope\":\"", scope, "\",\"seconds\":",
                               absl::ToInt64Seconds(**until - absl::Now()) + 1, "}"));
    }
  };
  count(AccountSourceKey(ctx, username), settings_.account_source_throttle, "account_source");
  count(SourceKey(ctx), settings_.source_throttle, "source");
}

v1::TokenPair AuthServiceImpl::AccessToken(const SessionRow& session) const {
  absl::Time now = absl::Now();
  JwtClaims c;
  c.sub = session.subject;
  c.role = session.role;
  c.aud = session.audience;
  c.iss = kIssuer;
  c.jti = RandomUuid();
  c.iat = c.nbf = now;
  c.exp = now + settings_.access_ttl;
  c.sid = session.session_id;
  v1::TokenPair pair;
  pair.set_access_token(jwt_.Sign(c));
  SetTime(pair.mutable_access_expires_at(), c.exp);
  pair.set_role(RoleEnum(session.role));
  pair.set_subject(session.subject);
  return pair;
}

absl::StatusOr<v1::TokenPair> AuthServiceImpl::StartSession(const std::string& subject,
                                                            const std::string& role,
                                                            const std::string& audience) {
  std::string refresh = NewSecret(kRefreshPrefix);
  absl::Time refresh_exp = absl::Now() + settings_.refresh_ttl;
  REDFLAG_ASSIGN_OR_RETURN(
      std::string session_id,
      store_.CreateSession(subject, role, audience, Sha256Hex(refresh), refresh_exp));
  v1::TokenPair pair = AccessToken({session_id, subject, role, audience});
  pair.set_refresh_token(refresh);
  SetTime(pair.mutable_refresh_expires_at(), refresh_exp);
  return pair;
}

grpc::Status AuthServiceImpl::Login(grpc::ServerContext* ctx, const v1::LoginRequest* req,
                                    v1::TokenPair* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  if (req->username().empty() || req->password().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "username and password are required");
  }
  if (req->username().size() > 128 || req->password().size() > 1024) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "username or password too long");
  }
  // The username is recorded in the audit trail: no NUL or control characters.
  if (absl::Status s = ValidateText("username", req->username(), 128, false); !s.ok()) {
    return ToGrpcStatus(s);
  }
  absl::StatusOr<std::optional<absl::Time>> locked =
      store_.LockedUntil({AccountSourceKey(*ctx, req->username()), SourceKey(*ctx)});
  if (!locked.ok()) return ToGrpcStatus(locked.status());
  if (locked->has_value()) {
    // Same answer for existing and unknown names: throttling reveals nothing about accounts.
    return Fail(*ctx, "throttled", req->username(), LockedOut(**locked));
  }
  absl::StatusOr<std::optional<UserRow>> user = store_.FindUser(req->username());
  if (!user.ok()) return ToGrpcStatus(user.status());
  bool ok = false;
  if (user->has_value()) {
    ok = VerifyPassword((*user)->password_hash, req->password());
  } else {
    VerifyDummyPassword(req->password());  // same cost whether or not the user exists
  }
  if (!ok) {
    CountFailedLogin(*ctx, req->username());
    return Fail(*ctx, "bad_credentials", req->username(),
                absl::UnauthenticatedError("invalid username or password"));
  }
  // Only this account's count from this source: a success must not reset a sprayer's
  // per-source count.
  (void)store_.ClearFailures(AccountSourceKey(*ctx, req->username()));
  absl::StatusOr<v1::TokenPair> pair =
      StartSession((*user)->username, (*user)->role, kOperatorAudience);
  if (!pair.ok()) return ToGrpcStatus(pair.status());
  *resp = *std::move(pair);
  return grpc::Status::OK;
}

grpc::Status AuthServiceImpl::Refresh(grpc::ServerContext* ctx, const v1::RotateRefreshRequest* req,
                                      v1::TokenPair* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  if (req->refresh_token().empty() || req->refresh_token().size() > 200) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "refresh_token is required (at most 200 characters)");
  }
  if (req->audience() != kOperatorAudience && req->audience() != kAgentAudience) {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("audience must be ", kOperatorAudience, " or ", kAgentAudience));
  }
  std::string fresh = NewSecret(kRefreshPrefix);
  absl::Time fresh_exp = absl::Now() + settings_.refresh_ttl;
  absl::StatusOr<RotateResult> r = store_.RotateRefresh(
      {Sha256Hex(req->refresh_token()), Sha256Hex(fresh), fresh_exp, settings_.agent_refresh_grace,
       req->audience(), req->subject(), req->check_only()});
  if (!r.ok()) return ToGrpcStatus(r.status());
  switch (r->outcome) {
    case RotateOutcome::kRotated:
      break;
    case RotateOutcome::kRotatedInGrace:
      if (req->check_only()) break;
      RecordEvent(*ctx, "REFRESH_GRACE_USED", r->session.subject,
                  absl::StrCat("{\"session\":", JsonQuote(r->session.session_id), "}"));
      break;
    case RotateOutcome::kUnknown:
      return Fail(*ctx, "unknown_refresh_token", "",
                  absl::UnauthenticatedError("refresh token not recognised"));
    case RotateOutcome::kWrongAudience:
      return Fail(*ctx, "wrong_session_kind", r->session.subject,
                  absl::UnauthenticatedError(
                      absl::StrCat("refresh token not recognised: it belongs to a ",
                                   r->session.audience, " session, not ", req->audience())));
    case RotateOutcome::kWrongSubject:
      return Fail(*ctx, "wrong_subject", r->session.subject,
                  absl::PermissionDeniedError("refresh token belongs to another agent"));
    case RotateOutcome::kExpired:
      return Fail(*ctx, "expired_refresh_token", r->session.subject,
                  absl::UnauthenticatedError("refresh token has expired; log in again"));
    case RotateOutcome::kRevoked:
      return Fail(*ctx, "revoked_session", r->session.subject,
                  absl::UnauthenticatedError("session was revoked; log in again"));
    case RotateOutcome::kReused: {
      RecordEvent(*ctx, "REFRESH_TOKEN_REUSE", r->session.subject,
                  absl::StrCat("{\"session\":", JsonQuote(r->session.session_id), "}"));
      return Fail(*ctx, "refresh_token_reuse", r->session.subject,
                  absl::UnauthenticatedError(
                      "refresh token was already used; the session has been revoked"));
    }
  }
  if (req->check_only()) {
    resp->set_subject(r->session.subject);  // nothing issued: the caller only learns it is valid
    return grpc::Status::OK;
  }
  *resp = AccessToken(r->session);
  resp->set_refresh_token(fresh);
  SetTime(resp->mutable_refresh_expires_at(), fresh_exp);
  return grpc::Status::OK;
}

grpc::Status AuthServiceImpl::Logout(grpc::ServerContext* ctx, const v1::LogoutRequest* req,
                                     v1::LogoutResponse*) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  if (req->refresh_token().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "refresh_token is required");
  }
  // Only the caller's own session: knowing someone else's refresh token is not a licence
  // to end their session here.
  return ToGrpcStatus(store_.RevokeSessionByRefresh(Sha256Hex(req->refresh_token()),
                                                    ActorFromMetadata(*ctx).subject));
}

grpc::Status AuthServiceImpl::CreateRegistrationToken(grpc::ServerContext* ctx,
                                                      const v1::CreateRegistrationTokenRequest* req,
                                                      v1::CreateRegistrationTokenResponse* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  if (req->seats() < 1 || req->seats() > settings_.limits.max_seats) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("seats must be between 1 and ", settings_.limits.max_seats,
                                     " (REDFLAG_MAX_SEATS), got ", req->seats()));
  }
  if (req->ttl_seconds() < 0 || req->ttl_seconds() > 365LL * 24 * 3600) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "ttl_seconds must be between 0 (default 24 h) and one year");
  }
  if (req->label().size() > 200) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "label is longer than 200 characters");
  }
  absl::Duration ttl = req->ttl_seconds() == 0 ? settings_.default_registration_ttl
                                               : absl::Seconds(req->ttl_seconds());
  std::string secret = NewSecret(kRegistrationPrefix);
  Actor actor = ActorFromMetadata(*ctx);
  absl::StatusOr<v1::RegistrationToken> t = store_.CreateRegistrationToken(
      Sha256Hex(secret), secret.substr(0, kShownPrefix), req->label(), req->seats(),
      absl::Now() + ttl, actor.subject, settings_.limits);
  if (!t.ok()) return ToGrpcStatus(t.status());
  *resp->mutable_token() = *std::move(t);
  resp->set_secret(secret);
  return grpc::Status::OK;
}

grpc::Status AuthServiceImpl::ListRegistrationTokens(grpc::ServerContext* ctx,
                                                     const v1::ListRegistrationTokensRequest* req,
                                                     v1::ListRegistrationTokensResponse* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  absl::StatusOr<int> size = PageSize(req->page_size());
  if (!size.ok()) return ToGrpcStatus(size.status());
  absl::StatusOr<TimeIdCursor> after = ParseTimeIdToken("tokens", req->page_token());
  if (!after.ok()) return ToGrpcStatus(after.status());
  // One more than asked: whether another page follows, without an empty last page.
  absl::StatusOr<AuthStore::TokenPage> page =
      store_.ListRegistrationTokens(req->include_inactive(), *after, *size + 1);
  if (!page.ok()) return ToGrpcStatus(page.status());
  resp->set_next_page_token(TrimToPage("tokens", *size, page->tokens, page->keys));
  for (auto& t : page->tokens) *resp->add_tokens() = std::move(t);
  return grpc::Status::OK;
}

grpc::Status AuthServiceImpl::RevokeRegistrationToken(grpc::ServerContext* ctx,
                                                      const v1::RevokeRegistrationTokenRequest* req,
                                                      v1::RegistrationToken* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  if (req->id().empty()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "id is required");
  absl::StatusOr<v1::RegistrationToken> t = store_.RevokeRegistrationToken(req->id());
  if (!t.ok()) return ToGrpcStatus(t.status());
  *resp = *std::move(t);
  return grpc::Status::OK;
}

grpc::Status AuthServiceImpl::ConsumeRegistrationSeat(grpc::ServerContext* ctx,
                                                      const v1::ConsumeRegistrationSeatRequest* req,
                                                      v1::ConsumeRegistrationSeatResponse* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  if (req->secret().empty() || req->secret().size() > 200) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "registration token is required");
  }
  // Recorded with the seat: checked before anything is written.
  if (absl::Status s = ValidateMachineId("machine_id", req->machine_id()); !s.ok()) {
    return ToGrpcStatus(s);
  }
  absl::StatusOr<v1::ConsumeRegistrationSeatResponse> seat =
      store_.ConsumeSeat(Sha256Hex(req->secret()), req->machine_id());
  if (!seat.ok()) {
    return Fail(*ctx, "bad_registration_token", req->machine_id().substr(0, 16), seat.status());
  }
  seats_consumed_.Increment();
  *resp = *std::move(seat);
  return grpc::Status::OK;
}

grpc::Status AuthServiceImpl::ReleaseRegistrationSeat(grpc::ServerContext* ctx,
                                                      const v1::ReleaseRegistrationSeatRequest* req,
                                                      v1::LogoutResponse*) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  return ToGrpcStatus(store_.ReleaseSeat(req->seat_id()));
}

grpc::Status AuthServiceImpl::IssueAgentCredentials(grpc::ServerContext* ctx,
                                                    const v1::IssueAgentCredentialsRequest* req,
                                                    v1::TokenPair* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  if (req->agent_id().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "agent_id is required");
  }
  absl::StatusOr<v1::TokenPair> pair = StartSession(req->agent_id(), "agent", kAgentAudience);
  if (!pair.ok()) return ToGrpcStatus(pair.status());
  *resp = *std::move(pair);
  return grpc::Status::OK;
}

grpc::Status AuthServiceImpl::CreateUser(grpc::ServerContext* ctx, const v1::CreateUserRequest* req,
                                         v1::User* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  const std::string& name = req->username();
  if (name.empty() || name.size() > 64 ||
      name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789._-") != std::string::npos) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "username must be 1-64 characters of a-z, 0-9, '.', '_' or '-'");
  }
  if (req->password().size() < 12 || req->password().size() > 1024) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "password must be between 12 and 1024 characters");
  }
  std::string role;
  switch (req->role()) {
    case v1::ADMIN:
      role = "admin";
      break;
    case v1::OPERATOR:
      role = "operator";
      break;
    case v1::VIEWER:
      role = "viewer";
      break;
    default:
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "role must be ADMIN, OPERATOR or VIEWER");
  }
  absl::StatusOr<std::string> hash = HashPassword(req->password());
  if (!hash.ok()) return ToGrpcStatus(hash.status());
  absl::StatusOr<UserRow> user = store_.CreateUser(name, *hash, role);
  if (!user.ok()) return ToGrpcStatus(user.status());
  Actor actor = ActorFromMetadata(*ctx);
  RecordEvent(*ctx, "USER_CREATED", actor.subject,
              absl::StrCat("{\"user\":", JsonQuote(name), ",\"role\":", JsonQuote(role), "}"));
  resp->set_id(user->id);
  resp->set_username(user->username);
  resp->set_role(req->role());
  SetTime(resp->mutable_created_at(), absl::Now());
  return grpc::Status::OK;
}

grpc::Status AuthServiceImpl::ListUsers(grpc::ServerContext* ctx, const v1::ListUsersRequest* req,
                                        v1::ListUsersResponse* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  absl::StatusOr<int> size = PageSize(req->page_size());
  if (!size.ok()) return ToGrpcStatus(size.status());
  absl::StatusOr<TimeIdCursor> after = ParseTimeIdToken("users", req->page_token());
  if (!after.ok()) return ToGrpcStatus(after.status());
  absl::StatusOr<AuthStore::UserPage> page = store_.ListUsers(*after, *size + 1);
  if (!page.ok()) return ToGrpcStatus(page.status());
  resp->set_next_page_token(TrimToPage("users", *size, page->users, page->keys));
  for (const auto& [u, created] : page->users) {
    v1::User* out = resp->add_users();
    out->set_id(u.id);
    out->set_username(u.username);
    out->set_role(RoleEnum(u.role));
    out->mutable_created_at()->set_seconds(created);
  }
  return grpc::Status::OK;
}

grpc::Status AuthServiceImpl::ReportAuthFailure(grpc::ServerContext* ctx,
                                                const v1::ReportAuthFailureRequest* req,
                                                v1::LogoutResponse*) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  // The gateway already counted it in its own redflag_auth_failures_total; only record.
  RecordEvent(*ctx, "AUTH_FAILURE", StorableText(req->actor(), 128),
              absl::StrCat("{\"reason\":", JsonQuote(TruncateUtf8(req->reason(), 64)),
                           R"(,"at":"gateway"})"));
  return grpc::Status::OK;
}

grpc::Status AuthServiceImpl::WatchRevokedSessions(grpc::ServerContext* ctx,
                                                   const v1::WatchRevokedSessionsRequest*,
                                                   grpc::ServerWriter<v1::RevokedSession>* writer) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  // Subscribe before reading the snapshot: a revocation committed in between is in one or
  // the other (or both, which is harmless).
  std::shared_ptr<EventHub::Subscription> sub = hub_.Subscribe();
  struct Unsubscribe {
    EventHub& hub;
    std::shared_ptr<EventHub::Subscription> sub;
    ~Unsubscribe() { hub.Unsubscribe(sub); }
  } unsubscribe{hub_, sub};
  // A token is usable until exp + the verifier's clock skew; remember a revocation that long.
  const absl::Duration lifetime = settings_.access_ttl + JwtCodec::kClockSkew;
  auto send = [&](const std::string& session_id) {
    v1::RevokedSession r;
    r.set_session_id(session_id);
    SetTime(r.mutable_forget_after(), absl::Now() + lifetime);
    return writer->Write(r);
  };
  absl::StatusOr<std::vector<std::string>> recent = store_.RevokedSince(absl::Now() - lifetime);
  if (!recent.ok()) return ToGrpcStatus(recent.status());
  for (const auto& id : *recent) {
    if (!send(id)) return grpc::Status::OK;
  }
  while (!ctx->IsCancelled()) {
    std::optional<std::string> payload = sub->Next(absl::Milliseconds(500));
    if (!payload) continue;
    if (payload->empty()) {
      // Events were dropped (a slow reader or a lost database connection): end the stream
      // so the gateway reconnects and reads the snapshot again.
      return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          "revocation feed fell behind; reconnect for a fresh snapshot");
    }
    if (!send(*payload)) break;
  }
  return grpc::Status::OK;
}

namespace {

absl::StatusOr<v1::AuditVerification> Verify(const SecurityEventWriter& events, int64_t from,
                                             int64_t to) {
  REDFLAG_ASSIGN_OR_RETURN(AuditVerification v, events.Verify(from, to));
  v1::AuditVerification out;
  out.set_intact(v.first_bad_id == 0);
  out.set_checked(v.checked);
  out.set_last_id(v.last_id);
  out.set_first_bad_id(v.first_bad_id);
  out.set_reason(v.reason);
  return out;
}

}  // namespace

absl::StatusOr<v1::AuditVerification> AuthServiceImpl::VerifyWholeAuditChain() {
  absl::StatusOr<v1::AuditVerification> v = Verify(events_, 1, 0);
  if (v.ok()) {
    audit_verified_.Set(v->intact() ? 1 : 0);
    audit_events_verified_.Set(static_cast<double>(v->checked()));
    if (!v->intact()) {
      LogError(absl::StrCat("SECURITY: audit chain broken at event ", v->first_bad_id(), ": ",
                            v->reason()));
    }
  }
  return v;
}

grpc::Status AuthServiceImpl::VerifyAuditTrail(grpc::ServerContext* ctx,
                                               const v1::VerifyAuditTrailRequest* req,
                                               v1::AuditVerification* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  if (req->from_id() < 0 || req->to_id() < 0 ||
      (req->to_id() != 0 && req->to_id() < req->from_id())) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "from_id and to_id must be >= 0 with to_id 0 (the end) or >= from_id");
  }
  bool whole = req->from_id() <= 1 && req->to_id() == 0;
  absl::StatusOr<v1::AuditVerification> v =
      whole ? VerifyWholeAuditChain() : Verify(events_, req->from_id(), req->to_id());
  if (!v.ok()) return ToGrpcStatus(v.status());
  *resp = *std::move(v);
  return grpc::Status::OK;
}

grpc::Status AuthServiceImpl::ListSecurityEvents(grpc::ServerContext* ctx,
                                                 const v1::ListSecurityEventsRequest* req,
                                                 v1::ListSecurityEventsResponse* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  return ToGrpcStatus(ListSecurityEventsPage(store_.pool(), *req, *resp));
}

grpc::Status AuthServiceImpl::SecurityEventCounts(grpc::ServerContext* ctx,
                                                  const v1::SecurityEventCountsRequest* req,
                                                  v1::SecurityEventCountsResponse* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  if (req->types_size() > 20 || req->since_seconds() <= 0) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "1-20 types and a positive since_seconds are required");
  }
  std::vector<std::string> types(req->types().begin(), req->types().end());
  absl::StatusOr<std::map<std::string, int64_t>> counts =
      CountSecurityEvents(store_.pool(), types, absl::Seconds(req->since_seconds()));
  if (!counts.ok()) return ToGrpcStatus(counts.status());
  for (const auto& [t, n] : *counts) (*resp->mutable_counts())[t] = n;
  return grpc::Status::OK;
}

}  // namespace redflag::auth
