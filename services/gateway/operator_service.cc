#include "services/gateway/operator_service.h"

#include "services/gateway/forward.h"

namespace redflag::gateway {

// Authenticate with at least `role`, then relay `req` to stub->async()->method.
#define RELAY(role, stub, method)                                                \
  do {                                                                           \
    absl::StatusOr<Actor> actor = authn_.Operator(*ctx, role);                   \
    if (!actor.ok()) return Reject(ctx, actor.status());                         \
    return Forward<std::decay_t<decltype(*req)>, std::decay_t<decltype(*resp)>>( \
        ctx, req, resp, *actor, [this](auto* c, auto* rq, auto* rs, auto done) { \
          backends_.stub->async()->method(c, rq, rs, std::move(done));           \
        });                                                                      \
  } while (0)

// Unauthenticated calls still carry the source address for the audit trail.
#define RELAY_ANONYMOUS(stub, method)                                                              \
  return Forward<std::decay_t<decltype(*req)>, std::decay_t<decltype(*resp)>>(                     \
      ctx, req, resp, Actor{"", "", ctx->peer()}, [this](auto* c, auto* rq, auto* rs, auto done) { \
        backends_.stub->async()->method(c, rq, rs, std::move(done));                               \
      })

grpc::ServerUnaryReactor* OperatorServiceImpl::Login(grpc::CallbackServerContext* ctx,
                                                     const v1::LoginRequest* req,
                                                     v1::TokenPair* resp) {
  RELAY_ANONYMOUS(auth, Login);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::Refresh(grpc::CallbackServerContext* ctx,
                                                       const v1::RefreshRequest* req,
                                                       v1::TokenPair* resp) {
  RELAY_ANONYMOUS(auth, Refresh);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::Logout(grpc::CallbackServerContext* ctx,
                                                      const v1::LogoutRequest* req,
                                                      v1::LogoutResponse* resp) {
  RELAY(Role::kViewer, auth, Logout);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::CreateRegistrationToken(
    grpc::CallbackServerContext* ctx, const v1::CreateRegistrationTokenRequest* req,
    v1::CreateRegistrationTokenResponse* resp) {
  RELAY(Role::kOperator, auth, CreateRegistrationToken);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::ListRegistrationTokens(
    grpc::CallbackServerContext* ctx, const v1::ListRegistrationTokensRequest* req,
    v1::ListRegistrationTokensResponse* resp) {
  RELAY(Role::kViewer, auth, ListRegistrationTokens);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::RevokeRegistrationToken(
    grpc::CallbackServerContext* ctx, const v1::RevokeRegistrationTokenRequest* req,
    v1::RegistrationToken* resp) {
  RELAY(Role::kOperator, auth, RevokeRegistrationToken);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::ListAgents(grpc::CallbackServerContext* ctx,
                                                          const v1::ListAgentsRequest* req,
                                                          v1::ListAgentsResponse* resp) {
  RELAY(Role::kViewer, agents, ListAgents);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::GetAgent(grpc::CallbackServerContext* ctx,
                                                        const v1::GetAgentRequest* req,
                                                        v1::Agent* resp) {
  RELAY(Role::kViewer, agents, GetAgent);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::BlockAgent(grpc::CallbackServerContext* ctx,
                                                          const v1::BlockAgentRequest* req,
                                                          v1::Agent* resp) {
  RELAY(Role::kOperator, agents, BlockAgent);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::UnblockAgent(grpc::CallbackServerContext* ctx,
                                                            const v1::UnblockAgentRequest* req,
                                                            v1::Agent* resp) {
  RELAY(Role::kOperator, agents, UnblockAgent);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::ListSigningKeys(
    grpc::CallbackServerContext* ctx, const v1::ListSigningKeysRequest* req,
    v1::ListSigningKeysResponse* resp) {
  RELAY(Role::kViewer, updates, ListSigningKeys);
}

}  // namespace redflag::gateway
