#include "services/gateway/operator_service.h"

#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/jwt.h"
#include "services/gateway/backend_flow.h"
#include "services/gateway/forward.h"
#include "services/gateway/publish_relay.h"

namespace redflag::gateway {

// Authenticate with at least `role`, then relay `req` to stub->async()->method.
// Methods that change state also spend one of the operator's write tokens.
#define RELAY_AS(role, is_write, stub, method)                                   \
  do {                                                                           \
    absl::StatusOr<Actor> actor = Caller(*ctx, role, is_write);                  \
    if (!actor.ok()) return Reject(ctx, actor.status());                         \
    return Forward<std::decay_t<decltype(*req)>, std::decay_t<decltype(*resp)>>( \
        ctx, req, resp, *actor, *backends_.operator_gate,                        \
        [this](auto* c, auto* rq, auto* rs, auto done) {                         \
          backends_.stub->async()->method(c, rq, rs, std::move(done));           \
        });                                                                      \
  } while (0)
absl::StatusOr<Actor> OperatorServiceImpl::Caller(const grpc::ServerContextBase& ctx, Role min_role,
                                                  bool is_write) {
  absl::StatusOr<Actor> actor = authn_.Operator(ctx, min_role);
  if (!actor.ok() || !is_write) return actor;
  if (absl::Status limited = limits_.operator_writes.Acquire(actor->subject); !limited.ok()) {
    return limited;
  }
  return actor;
}

#define READ(role, stub, method) RELAY_AS(role, false, stub, method)
#define WRITE(role, stub, method) RELAY_AS(role, true, stub, method)

// Unauthenticated calls (login, refresh) are rate-limited per source address and still
// carry it for the audit trail.
#define RELAY_ANONYMOUS(stub, method)                                            \
  do {                                                                           \
    absl::Status limited = limits_.login.Acquire(SourceIp(ctx->peer()));         \
    if (!limited.ok()) return Reject(ctx, limited);                              \
    return Forward<std::decay_t<decltype(*req)>, std::decay_t<decltype(*resp)>>( \
        ctx, req, resp, Actor{"", "", ctx->peer()}, *backends_.operator_gate,    \
        [this](auto* c, auto* rq, auto* rs, auto done) {                         \
          backends_.stub->async()->method(c, rq, rs, std::move(done));           \
        });                                                                      \
  } while (0)

grpc::ServerUnaryReactor* OperatorServiceImpl::Login(grpc::CallbackServerContext* ctx,
                                                     const v1::LoginRequest* req,
                                                     v1::TokenPair* resp) {
  RELAY_ANONYMOUS(auth, Login);
}

namespace {

// Operator refresh: auth rotates only operator sessions (an agent's refresh token is
// refused there and left untouched).
class OperatorRefreshFlow final : public BackendFlow {
 public:
  OperatorRefreshFlow(grpc::CallbackServerContext* ctx, const v1::RefreshRequest* req,
                      v1::TokenPair* resp, Backends& b)
      : BackendFlow(ctx, b, Actor{"", "", ctx->peer()}), resp_(resp) {
    refresh_.set_refresh_token(req->refresh_token());
    refresh_.set_audience(kOperatorAudience);
  }

  grpc::ServerUnaryReactor* Start() {
    grpc::ServerUnaryReactor* reactor = this->reactor();
    grpc::ClientContext* ctx = NextContext();
    GatedCall(
        *b_.operator_gate,
        [this, ctx](Completion cb) {
          b_.auth->async()->Refresh(ctx, &refresh_, resp_, std::move(cb));
        },
        [this](const grpc::Status& s) { Done(s); });
    return reactor;
  }

 private:
  v1::TokenPair* resp_;
  v1::RotateRefreshRequest refresh_;
};

}  // namespace

grpc::ServerUnaryReactor* OperatorServiceImpl::Refresh(grpc::CallbackServerContext* ctx,
                                                       const v1::RefreshRequest* req,
                                                       v1::TokenPair* resp) {
  if (absl::Status limited = limits_.login.Acquire(SourceIp(ctx->peer())); !limited.ok()) {
    return Reject(ctx, limited);
  }
  return (new OperatorRefreshFlow(ctx, req, resp, backends_))->Start();
}

grpc::ServerUnaryReactor* OperatorServiceImpl::Logout(grpc::CallbackServerContext* ctx,
                                                      const v1::LogoutRequest* req,
                                                      v1::LogoutResponse* resp) {
  WRITE(Role::kViewer, auth, Logout);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::CreateUser(grpc::CallbackServerContext* ctx,
                                                          const v1::CreateUserRequest* req,
                                                          v1::User* resp) {
  WRITE(Role::kAdmin, auth, CreateUser);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::ListUsers(grpc::CallbackServerContext* ctx,
                                                         const v1::ListUsersRequest* req,
                                                         v1::ListUsersResponse* resp) {
  READ(Role::kAdmin, auth, ListUsers);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::CreateRegistrationToken(
    grpc::CallbackServerContext* ctx, const v1::CreateRegistrationTokenRequest* req,
    v1::CreateRegistrationTokenResponse* resp) {
  WRITE(Role::kOperator, auth, CreateRegistrationToken);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::ListRegistrationTokens(
    grpc::CallbackServerContext* ctx, const v1::ListRegistrationTokensRequest* req,
    v1::ListRegistrationTokensResponse* resp) {
  READ(Role::kViewer, auth, ListRegistrationTokens);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::RevokeRegistrationToken(
    grpc::CallbackServerContext* ctx, const v1::RevokeRegistrationTokenRequest* req,
    v1::RegistrationToken* resp) {
  WRITE(Role::kOperator, auth, RevokeRegistrationToken);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::ListAgents(grpc::CallbackServerContext* ctx,
                                                          const v1::ListAgentsRequest* req,
                                                          v1::ListAgentsResponse* resp) {
  READ(Role::kViewer, agents, ListAgents);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::GetAgent(grpc::CallbackServerContext* ctx,
                                                        const v1::GetAgentRequest* req,
                                                        v1::Agent* resp) {
  READ(Role::kViewer, agents, GetAgent);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::BlockAgent(grpc::CallbackServerContext* ctx,
                                                          const v1::BlockAgentRequest* req,
                                                          v1::Agent* resp) {
  WRITE(Role::kOperator, agents, BlockAgent);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::ResetAgentVersion(
    grpc::CallbackServerContext* ctx, const v1::ResetAgentVersionRequest* req, v1::Agent* resp) {
  WRITE(Role::kOperator, agents, ResetAgentVersion);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::UnblockAgent(grpc::CallbackServerContext* ctx,
                                                            const v1::UnblockAgentRequest* req,
                                                            v1::Agent* resp) {
  WRITE(Role::kOperator, agents, UnblockAgent);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::WarnAgent(grpc::CallbackServerContext* ctx,
                                                         const v1::WarnAgentRequest* req,
                                                         v1::Agent* resp) {
  WRITE(Role::kOperator, agents, WarnAgent);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::VerifyAgent(grpc::CallbackServerContext* ctx,
                                                           const v1::VerifyAgentRequest* req,
                                                           v1::Agent* resp) {
  WRITE(Role::kOperator, agents, VerifyAgent);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::DeleteAgent(grpc::CallbackServerContext* ctx,
                                                           const v1::DeleteAgentRequest* req,
                                                           v1::Agent* resp) {
  WRITE(Role::kOperator, agents, DeleteAgent);
}

namespace {

// Rebind: consume a seat of the fresh registration token for the new fingerprint, then
// rebind; a refused rebind gives the seat back.
class RebindFlow final : public BackendFlow {
 public:
  RebindFlow(grpc::CallbackServerContext* ctx, const v1::RebindAgentRequest* req, v1::Agent* resp,
             Backends& b, Actor actor)
      : BackendFlow(ctx, b, std::move(actor)), req_(*req), resp_(resp) {}

  grpc::ServerUnaryReactor* Start() {
    grpc::ServerUnaryReactor* reactor = this->reactor();
    seat_req_.set_secret(req_.registration_secret());
    seat_req_.set_machine_id(req_.new_machine_id());
    GatedCall(
        *b_.operator_gate,
        [this, ctx = NextContext()](Completion cb) {
          b_.auth->async()->ConsumeRegistrationSeat(ctx, &seat_req_, &seat_, std::move(cb));
        },
        [this](const grpc::Status& s) { OnSeat(s); });
    return reactor;
  }

 private:
  void OnSeat(const grpc::Status& s) {
    if (!s.ok()) return Done(s);
    req_.clear_registration_secret();  // the agents service never sees the secret
    req_.set_registration_token_id(seat_.token_id());
    GatedCall(
        *b_.operator_gate,
        [this, ctx = NextContext()](Completion cb) {
          b_.agents->async()->RebindAgent(ctx, &req_, resp_, std::move(cb));
        },
        [this](const grpc::Status& s) { OnRebound(s); });
  }
  void OnRebound(const grpc::Status& s) {
    if (s.ok()) return Done(s);
    ReleaseSeatThenFail(seat_.seat_id(), s);
  }

  v1::RebindAgentRequest req_;
  v1::Agent* resp_;
  v1::ConsumeRegistrationSeatRequest seat_req_;
  v1::ConsumeRegistrationSeatResponse seat_;
};

}  // namespace

namespace {

// The security overview: three backend reads in parallel (keys, non-compliant agents,
// recent security events), combined with alerts and recommendations.
class OverviewFlow final : public BackendFlow {
 public:
  static constexpr int64_t kWindowSeconds = int64_t{24} * 3600;

  OverviewFlow(grpc::CallbackServerContext* ctx, v1::SecurityOverview* resp, Backends& b,
               Actor actor)
      : BackendFlow(ctx, b, std::move(actor)), resp_(resp) {}

  grpc::ServerUnaryReactor* Start() {
    grpc::ServerUnaryReactor* reactor = this->reactor();
    // Counted by the database; one agent comes back, not the fleet.
    non_compliant_req_.set_compliance(false);
    non_compliant_req_.set_page_size(1);
    counts_req_.add_types("UPDATE_VERIFICATION_FAILED");
    counts_req_.add_types("MACHINE_ID_MISMATCH");
    counts_req_.add_types("AUTH_FAILURE");
    counts_req_.set_since_seconds(kWindowSeconds);
    GatedCall(
        *b_.operator_gate,
        [this, ctx = NextContext()](Completion cb) {
          b_.updates->async()->ListSigningKeys(ctx, &keys_req_, &keys_, std::move(cb));
        },
        [this](const grpc::Status& s) { OnReply(s); });
    GatedCall(
        *b_.operator_gate,
        [this, ctx = NextContext()](Completion cb) {
          b_.agents->async()->ListAgents(ctx, &non_compliant_req_, &non_compliant_, std::move(cb));
        },
        [this](const grpc::Status& s) { OnReply(s); });
    GatedCall(
        *b_.operator_gate,
        [this, ctx = NextContext()](Completion cb) {
          b_.auth->async()->SecurityEventCounts(ctx, &counts_req_, &counts_, std::move(cb));
        },
        [this](const grpc::Status& s) { OnReply(s); });
    return reactor;
  }

 private:
  void OnReply(const grpc::Status& s) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!s.ok() && first_error_.ok()) first_error_ = s;
      if (--pending_ > 0) return;
    }
    if (first_error_.ok()) Combine();
    Done(first_error_);
  }

  void Combine() {
    resp_->set_signing_enabled(!keys_.keys().empty());
    for (const auto& k : keys_.keys()) *resp_->add_signing_keys() = k;
    resp_->set_nonce_validation_enabled(true);  // every instruction carries a signed nonce
    const auto& c = counts_.counts();
    auto count = [&c](const char* t) { return c.count(t) ? c.at(t) : 0; };
    resp_->set_verification_failures(count("UPDATE_VERIFICATION_FAILED"));
    resp_->set_binding_violations(count("MACHINE_ID_MISMATCH"));
    resp_->set_auth_failures(count("AUTH_FAILURE"));
    resp_->set_non_compliant_agents(non_compliant_.total_size());
    if (resp_->verification_failures() > 0) {
      resp_->add_alerts(absl::StrCat(resp_->verification_failures(),
                                     " update verification failure(s) in 24 h: follow the "
                                     "Update Tampering Incident procedure"));
    }
    if (resp_->binding_violations() > 0) {
      resp_->add_alerts(absl::StrCat(resp_->binding_violations(),
                                     " machine binding violation(s) in 24 h: check for copied "
                                     "agent configuration"));
    }
    if (resp_->auth_failures() > 100) {
      resp_->add_alerts(absl::StrCat(resp_->auth_failures(), " authentication failures in 24 h"));
    }
    if (resp_->non_compliant_agents() > 0) {
      resp_->add_recommendations(absl::StrCat(resp_->non_compliant_agents(),
                                              " agent(s) are not compliant: list them with "
                                              "ListAgents {\"compliance\": false}"));
    }
    if (!keys_.keys().empty() && keys_.keys(0).created_at().seconds() <
                                     absl::ToUnixSeconds(absl::Now() - absl::Hours(24 * 90))) {
      resp_->add_recommendations("the primary signing key is older than 90 days: rotate it");
    }
  }

  v1::SecurityOverview* resp_;
  std::mutex mu_;
  int pending_ = 3;
  grpc::Status first_error_;
  v1::ListSigningKeysRequest keys_req_;
  v1::ListSigningKeysResponse keys_;
  v1::ListAgentsRequest non_compliant_req_;
  v1::ListAgentsResponse non_compliant_;
  v1::SecurityEventCountsRequest counts_req_;
  v1::SecurityEventCountsResponse counts_;
};

}  // namespace

grpc::ServerUnaryReactor* OperatorServiceImpl::RebindAgent(grpc::CallbackServerContext* ctx,
                                                           const v1::RebindAgentRequest* req,
                                                           v1::Agent* resp) {
  absl::StatusOr<Actor> actor = Caller(*ctx, Role::kOperator, /*is_write=*/true);
  if (!actor.ok()) return Reject(ctx, actor.status());
  if (req->id().empty() || req->registration_secret().empty() || req->new_machine_id().empty()) {
    return Reject(ctx, absl::InvalidArgumentError(
                           "id, registration_secret and new_machine_id are required to rebind"));
  }
  return (new RebindFlow(ctx, req, resp, backends_, *std::move(actor)))->Start();
}

grpc::ServerReadReactor<v1::PublishUpdateChunk>* OperatorServiceImpl::PublishUpdate(
    grpc::CallbackServerContext* ctx, v1::Update* resp) {
  absl::StatusOr<Actor> actor = Caller(*ctx, Role::kOperator, /*is_write=*/true);
  if (!actor.ok()) {
    // A reactor that refuses at once: nothing is read.
    class Refuse final : public grpc::ServerReadReactor<v1::PublishUpdateChunk> {
     public:
      explicit Refuse(const absl::Status& s) { Finish(ToGrpcStatus(s)); }
      void OnDone() override { delete this; }
    };
    return new Refuse(actor.status());
  }
  return new PublishRelay(ctx, resp, backends_, *std::move(actor));
}

grpc::ServerUnaryReactor* OperatorServiceImpl::ListUpdates(grpc::CallbackServerContext* ctx,
                                                           const v1::ListUpdatesRequest* req,
                                                           v1::ListUpdatesResponse* resp) {
  READ(Role::kViewer, updates, ListUpdates);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::GetUpdate(grpc::CallbackServerContext* ctx,
                                                         const v1::GetUpdateRequest* req,
                                                         v1::Update* resp) {
  READ(Role::kViewer, updates, GetUpdate);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::RevokeUpdate(grpc::CallbackServerContext* ctx,
                                                            const v1::RevokeUpdateRequest* req,
                                                            v1::Update* resp) {
  WRITE(Role::kOperator, updates, RevokeUpdate);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::ListDeliveries(grpc::CallbackServerContext* ctx,
                                                              const v1::ListDeliveriesRequest* req,
                                                              v1::ListDeliveriesResponse* resp) {
  READ(Role::kViewer, updates, ListDeliveries);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::GetRollout(grpc::CallbackServerContext* ctx,
                                                          const v1::GetRolloutRequest* req,
                                                          v1::Rollout* resp) {
  READ(Role::kViewer, updates, GetRollout);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::PauseRollout(grpc::CallbackServerContext* ctx,
                                                            const v1::RolloutActionRequest* req,
                                                            v1::Rollout* resp) {
  WRITE(Role::kOperator, updates, PauseRollout);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::ResumeRollout(grpc::CallbackServerContext* ctx,
                                                             const v1::RolloutActionRequest* req,
                                                             v1::Rollout* resp) {
  WRITE(Role::kOperator, updates, ResumeRollout);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::AbortRollout(grpc::CallbackServerContext* ctx,
                                                            const v1::RolloutActionRequest* req,
                                                            v1::Rollout* resp) {
  WRITE(Role::kOperator, updates, AbortRollout);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::ApproveRolloutStage(
    grpc::CallbackServerContext* ctx, const v1::RolloutActionRequest* req, v1::Rollout* resp) {
  WRITE(Role::kOperator, updates, ApproveRolloutStage);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::PauseAllRollouts(grpc::CallbackServerContext* ctx,
                                                                const v1::EmergencyStopRequest* req,
                                                                v1::EmergencyStopResponse* resp) {
  WRITE(Role::kOperator, updates, PauseAllRollouts);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::GetSecuritySettings(
    grpc::CallbackServerContext* ctx, const v1::GetSecuritySettingsRequest* req,
    v1::SecuritySettings* resp) {
  READ(Role::kAdmin, agents, GetSecuritySettings);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::UpdateSecuritySettings(
    grpc::CallbackServerContext* ctx, const v1::UpdateSecuritySettingsRequest* req,
    v1::SecuritySettings* resp) {
  WRITE(Role::kAdmin, agents, UpdateSecuritySettings);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::ResumeAllRollouts(
    grpc::CallbackServerContext* ctx, const v1::EmergencyStopRequest* req,
    v1::EmergencyStopResponse* resp) {
  WRITE(Role::kOperator, updates, ResumeAllRollouts);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::VerifyAuditTrail(
    grpc::CallbackServerContext* ctx, const v1::VerifyAuditTrailRequest* req,
    v1::AuditVerification* resp) {
  READ(Role::kAdmin, auth, VerifyAuditTrail);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::ListSecurityEvents(
    grpc::CallbackServerContext* ctx, const v1::ListSecurityEventsRequest* req,
    v1::ListSecurityEventsResponse* resp) {
  READ(Role::kViewer, auth, ListSecurityEvents);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::GetSecurityOverview(
    grpc::CallbackServerContext* ctx, const v1::SecurityOverviewRequest*,
    v1::SecurityOverview* resp) {
  absl::StatusOr<Actor> actor = Caller(*ctx, Role::kViewer, /*is_write=*/false);
  if (!actor.ok()) return Reject(ctx, actor.status());
  return (new OverviewFlow(ctx, resp, backends_, *std::move(actor)))->Start();
}

grpc::ServerUnaryReactor* OperatorServiceImpl::ListSigningKeys(
    grpc::CallbackServerContext* ctx, const v1::ListSigningKeysRequest* req,
    v1::ListSigningKeysResponse* resp) {
  READ(Role::kViewer, updates, ListSigningKeys);
}

grpc::ServerUnaryReactor* OperatorServiceImpl::RevokeSigningKey(
    grpc::CallbackServerContext* ctx, const v1::RevokeSigningKeyRequest* req,
    v1::SigningKey* resp) {
  WRITE(Role::kAdmin, updates, RevokeSigningKey);
}

}  // namespace redflag::gateway
