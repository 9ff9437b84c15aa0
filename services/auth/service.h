// The auth service's gRPC surface (sync API: handlers may block on PostgreSQL and run
// on the server's bounded thread pool). Only the gateway may call it.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "common/event_hub.h"
#include "common/jwt.h"
#include "common/security_events.h"
#include "common/tls.h"
#include "redflag/v1/auth.grpc.pb.h"
#include "services/auth/store.h"

namespace redflag::auth {

struct AuthSettings {
  absl::Duration access_ttl = absl::Hours(24);
  absl::Duration refresh_ttl = absl::Hours(24 * 90);
  absl::Duration default_registration_ttl = absl::Hours(24);
  TokenLimits limits{100, 50};
  // Failed logins per (account, source address) and per source address (any account).
  LockoutPolicy account_source_throttle{5, absl::Minutes(15), absl::Seconds(15), absl::Minutes(15)};
  LockoutPolicy source_throttle{50, absl::Minutes(15), absl::Seconds(15), absl::Minutes(15)};
  // How long after a rotation an agent may present its previous refresh token once.
  absl::Duration agent_refresh_grace = absl::Seconds(60);
};

class AuthServiceImpl final : public v1::AuthService::Service {
 public:
  AuthServiceImpl(AuthStore& store, const JwtCodec& jwt, const SecurityEventWriter& events,
                  prometheus::Registry& metrics, EventHub& hub, AuthSettings settings);

  grpc::Status Login(grpc::ServerContext* ctx, const v1::LoginRequest* req,
                     v1::TokenPair* resp) override;
  grpc::Status Refresh(grpc::ServerContext* ctx, const v1::RotateRefreshRequest* req,
                       v1::TokenPair* resp) override;
  grpc::Status Logout(grpc::ServerContext* ctx, const v1::LogoutRequest* req,
                      v1::LogoutResponse* resp) override;
  grpc::Status CreateRegistrationToken(grpc::ServerContext* ctx,
                                       const v1::CreateRegistrationTokenRequest* req,
                                       v1::CreateRegistrationTokenResponse* resp) override;
  grpc::Status ListRegistrationTokens(grpc::ServerContext* ctx,
                                      const v1::ListRegistrationTokensRequest* req,
                                      v1::ListRegistrationTokensResponse* resp) override;
  grpc::Status RevokeRegistrationToken(grpc::ServerContext* ctx,
                                       const v1::RevokeRegistrationTokenRequest* req,
                                       v1::RegistrationToken* resp) override;
  grpc::Status ConsumeRegistrationSeat(grpc::ServerContext* ctx,
                                       const v1::ConsumeRegistrationSeatRequest* req,
                                       v1::ConsumeRegistrationSeatResponse* resp) override;
  grpc::Status ReleaseRegistrationSeat(grpc::ServerContext* ctx,
                                       const v1::ReleaseRegistrationSeatRequest* req,
                                       v1::LogoutResponse* resp) override;
  grpc::Status IssueAgentCredentials(grpc::ServerContext* ctx,
                                     const v1::IssueAgentCredentialsRequest* req,
                                     v1::TokenPair* resp) override;
  grpc::Status CreateUser(grpc::ServerContext* ctx, const v1::CreateUserRequest* req,
                          v1::User* resp) override;
  grpc::Status ListUsers(grpc::ServerContext* ctx, const v1::ListUsersRequest* req,
                         v1::ListUsersResponse* resp) override;
  grpc::Status ListSecurityEvents(grpc::ServerContext* ctx,
                                  const v1::ListSecurityEventsRequest* req,
                                  v1::ListSecurityEventsResponse* resp) override;
  grpc::Status SecurityEventCounts(grpc::ServerContext* ctx,
                                   const v1::SecurityEventCountsRequest* req,
                                   v1::SecurityEventCountsResponse* resp) override;
  grpc::Status ReportAuthFailure(grpc::ServerContext* ctx, const v1::ReportAuthFailureRequest* req,
                                 v1::LogoutResponse* resp) override;
  grpc::Status VerifyAuditTrail(grpc::ServerContext* ctx, const v1::VerifyAuditTrailRequest* req,
                                v1::AuditVerification* resp) override;
  // Verifies the whole chain and publishes redflag_audit_chain_verified (1 intact, 0 broken)
  // and redflag_audit_chain_events_verified. Run periodically by main.
  absl::StatusOr<v1::AuditVerification> VerifyWholeAuditChain();
  // Holds a pool thread per watcher (one per gateway replica) for the stream's life.
  grpc::Status WatchRevokedSessions(grpc::ServerContext* ctx,
                                    const v1::WatchRevokedSessionsRequest* req,
                                    grpc::ServerWriter<v1::RevokedSession>* writer) override;

 private:
  absl::StatusOr<v1::TokenPair> StartSession(const std::string& subject, const std::string& role,
                                             const std::string& audience);
  // An access token bound to `session` (its id travels as the "sid" claim).
  v1::TokenPair AccessToken(const SessionRow& session) const;
  // Counts the failure, records a security event, returns `status` unchanged.
  grpc::Status Fail(const grpc::ServerContext& ctx, const std::string& reason,
                    const std::string& actor, const absl::Status& status);
  void RecordEvent(const grpc::ServerContext& ctx, const std::string& type,
                   const std::string& actor, const std::string& detail_json);
  // Counts a failed login against the user and the source; records lockouts.
  void CountFailedLogin(const grpc::ServerContext& ctx, const std::string& username);

  AuthStore& store_;
  EventHub& hub_;  // session revocations from kSessionsChannel
  const JwtCodec& jwt_;
  const SecurityEventWriter& events_;
  prometheus::Family<prometheus::Counter>& failures_;
  prometheus::Counter& seats_consumed_;
  prometheus::Gauge& audit_verified_;
  prometheus::Gauge& audit_events_verified_;
  AuthSettings settings_;
  PeerPolicy gateway_only_{"gateway"};
};

}  // namespace redflag::auth
