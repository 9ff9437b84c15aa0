// The operators' API at the gateway (callback API). Authenticates the bearer token,
// enforces the role each method needs, then relays to the owning internal service.
#pragma once

#include "redflag/v1/gateway.grpc.pb.h"
#include "services/gateway/authn.h"
#include "services/gateway/backends.h"
#include "services/gateway/rate_limiter.h"

namespace redflag::gateway {

class OperatorServiceImpl final : public v1::OperatorService::CallbackService {
 public:
  OperatorServiceImpl(Backends& backends, Authenticator& authn, EdgeLimits& limits)
      : backends_(backends), authn_(authn), limits_(limits) {}

  grpc::ServerUnaryReactor* Login(grpc::CallbackServerContext* ctx, const v1::LoginRequest* req,
                                  v1::TokenPair* resp) override;
  grpc::ServerUnaryReactor* Refresh(grpc::CallbackServerContext* ctx, const v1::RefreshRequest* req,
                                    v1::TokenPair* resp) override;
  grpc::ServerUnaryReactor* Logout(grpc::CallbackServerContext* ctx, const v1::LogoutRequest* req,
                                   v1::LogoutResponse* resp) override;
  grpc::ServerUnaryReactor* CreateUser(grpc::CallbackServerContext* ctx,
                                       const v1::CreateUserRequest* req, v1::User* resp) override;
  grpc::ServerUnaryReactor* ListUsers(grpc::CallbackServerContext* ctx,
                                      const v1::ListUsersRequest* req,
                                      v1::ListUsersResponse* resp) override;
  grpc::ServerUnaryReactor* CreateRegistrationToken(
      grpc::CallbackServerContext* ctx, const v1::CreateRegistrationTokenRequest* req,
      v1::CreateRegistrationTokenResponse* resp) override;
  grpc::ServerUnaryReactor* ListRegistrationTokens(
      grpc::CallbackServerContext* ctx, const v1::ListRegistrationTokensRequest* req,
      v1::ListRegistrationTokensResponse* resp) override;
  grpc::ServerUnaryReactor* RevokeRegistrationToken(grpc::CallbackServerContext* ctx,
                                                    const v1::RevokeRegistrationTokenRequest* req,
                                                    v1::RegistrationToken* resp) override;
  grpc::ServerUnaryReactor* ListAgents(grpc::CallbackServerContext* ctx,
                                       const v1::ListAgentsRequest* req,
                                       v1::ListAgentsResponse* resp) override;
  grpc::ServerUnaryReactor* GetAgent(grpc::CallbackServerContext* ctx,
                                     const v1::GetAgentRequest* req, v1::Agent* resp) override;
  grpc::ServerUnaryReactor* BlockAgent(grpc::CallbackServerContext* ctx,
                                       const v1::BlockAgentRequest* req, v1::Agent* resp) override;
  grpc::ServerUnaryReactor* ResetAgentVersion(grpc::CallbackServerContext* ctx,
                                              const v1::ResetAgentVersionRequest* req,
                                              v1::Agent* resp) override;
  grpc::ServerUnaryReactor* UnblockAgent(grpc::CallbackServerContext* ctx,
                                         const v1::UnblockAgentRequest* req,
                                         v1::Agent* resp) override;
  grpc::ServerUnaryReactor* WarnAgent(grpc::CallbackServerContext* ctx,
                                      const v1::WarnAgentRequest* req, v1::Agent* resp) override;
  grpc::ServerUnaryReactor* VerifyAgent(grpc::CallbackServerContext* ctx,
                                        const v1::VerifyAgentRequest* req,
                                        v1::Agent* resp) override;
  grpc::ServerUnaryReactor* DeleteAgent(grpc::CallbackServerContext* ctx,
                                        const v1::DeleteAgentRequest* req,
                                        v1::Agent* resp) override;
  grpc::ServerUnaryReactor* RebindAgent(grpc::CallbackServerContext* ctx,
                                        const v1::RebindAgentRequest* req,
                                        v1::Agent* resp) override;
  grpc::ServerReadReactor<v1::PublishUpdateChunk>* PublishUpdate(grpc::CallbackServerContext* ctx,
                                                                 v1::Update* resp) override;
  grpc::ServerUnaryReactor* ListUpdates(grpc::CallbackServerContext* ctx,
                                        const v1::ListUpdatesRequest* req,
                                        v1::ListUpdatesResponse* resp) override;
  grpc::ServerUnaryReactor* GetUpdate(grpc::CallbackServerContext* ctx,
                                      const v1::GetUpdateRequest* req, v1::Update* resp) override;
  grpc::ServerUnaryReactor* RevokeUpdate(grpc::CallbackServerContext* ctx,
                                         const v1::RevokeUpdateRequest* req,
                                         v1::Update* resp) override;
  grpc::ServerUnaryReactor* ListDeliveries(grpc::CallbackServerContext* ctx,
                                           const v1::ListDeliveriesRequest* req,
                                           v1::ListDeliveriesResponse* resp) override;
  grpc::ServerUnaryReactor* GetRollout(grpc::CallbackServerContext* ctx,
                                       const v1::GetRolloutRequest* req,
                                       v1::Rollout* resp) override;
  grpc::ServerUnaryReactor* PauseRollout(grpc::CallbackServerContext* ctx,
                                         const v1::RolloutActionRequest* req,
                                         v1::Rollout* resp) override;
  grpc::ServerUnaryReactor* ResumeRollout(grpc::CallbackServerContext* ctx,
                                          const v1::RolloutActionRequest* req,
                                          v1::Rollout* resp) override;
  grpc::ServerUnaryReactor* AbortRollout(grpc::CallbackServerContext* ctx,
                                         const v1::RolloutActionRequest* req,
                                         v1::Rollout* resp) override;
  grpc::ServerUnaryReactor* ApproveRolloutStage(grpc::CallbackServerContext* ctx,
                                                const v1::RolloutActionRequest* req,
                                                v1::Rollout* resp) override;
  grpc::ServerUnaryReactor* PauseAllRollouts(grpc::CallbackServerContext* ctx,
                                             const v1::EmergencyStopRequest* req,
                                             v1::EmergencyStopResponse* resp) override;
  grpc::ServerUnaryReactor* ResumeAllRollouts(grpc::CallbackServerContext* ctx,
                                              const v1::EmergencyStopRequest* req,
                                              v1::EmergencyStopResponse* resp) override;
  grpc::ServerUnaryReactor* GetSecuritySettings(grpc::CallbackServerContext* ctx,
                                                const v1::GetSecuritySettingsRequest* req,
                                                v1::SecuritySettings* resp) override;
  grpc::ServerUnaryReactor* UpdateSecuritySettings(grpc::CallbackServerContext* ctx,
                                                   const v1::UpdateSecuritySettingsRequest* req,
                                                   v1::SecuritySettings* resp) override;
  grpc::ServerUnaryReactor* VerifyAuditTrail(grpc::CallbackServerContext* ctx,
                                             const v1::VerifyAuditTrailRequest* req,
                                             v1::AuditVerification* resp) override;
  grpc::ServerUnaryReactor* ListSecurityEvents(grpc::CallbackServerContext* ctx,
                                               const v1::ListSecurityEventsRequest* req,
                                               v1::ListSecurityEventsResponse* resp) override;
  grpc::ServerUnaryReactor* GetSecurityOverview(grpc::CallbackServerContext* ctx,
                                                const v1::SecurityOverviewRequest* req,
                                                v1::SecurityOverview* resp) override;
  grpc::ServerUnaryReactor* ListSigningKeys(grpc::CallbackServerContext* ctx,
                                            const v1::ListSigningKeysRequest* req,
                                            v1::ListSigningKeysResponse* resp) override;
  grpc::ServerUnaryReactor* RevokeSigningKey(grpc::CallbackServerContext* ctx,
                                             const v1::RevokeSigningKeyRequest* req,
                                             v1::SigningKey* resp) override;

 private:
  // The authenticated operator with at least `min_role`; a write also spends one of the
  // operator's write tokens (RESOURCE_EXHAUSTED with a retry delay when none is left).
  absl::StatusOr<Actor> Caller(const grpc::ServerContextBase& ctx, Role min_role, bool is_write);

  Backends& backends_;
  Authenticator& authn_;
  EdgeLimits& limits_;
};

}  // namespace redflag::gateway
