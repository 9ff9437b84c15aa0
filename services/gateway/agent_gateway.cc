#include "services/gateway/agent_gateway.h"

#include "absl/strings/str_cat.h"
#include "common/actor.h"
#include "common/jwt.h"
#include "common/log.h"
#include "common/status.h"
#include "common/validate.h"
#include "common/version.h"
#include "services/gateway/backend_flow.h"
#include "services/gateway/download_relay.h"
#include "services/gateway/forward.h"

namespace redflag::gateway {
namespace {

// Register's steps, each an asynchronous backend call whose completion starts the next:
// consume a seat → create the agent → issue credentials → fetch signing keys. A failure
// after the seat was taken gives the seat back.
class RegisterFlow final : public BackendFlow {
 public:
  RegisterFlow(grpc::CallbackServerContext* ctx, const v1::RegisterRequest* req,
               v1::RegisterResponse* resp, Backends& backends)
      : BackendFlow(ctx, backends, Actor{"", "agent", ctx->peer()}), req_(req), resp_(resp) {}

  grpc::ServerUnaryReactor* Start() {
    grpc::ServerUnaryReactor* reactor = this->reactor();
    seat_req_.set_secret(req_->registration_token());
    seat_req_.set_machine_id(req_->machine_id());
    grpc::ClientContext* ctx = NextContext();
    GatedCall(
        *b_.auth_gate,
        [this, ctx](Completion cb) {
          b_.auth->async()->ConsumeRegistrationSeat(ctx, &seat_req_, &seat_, std::move(cb));
        },
        [this](const grpc::Status& s) { OnSeat(s); });
    return reactor;
  }

 private:
  void OnSeat(const grpc::Status& s) {
    if (!s.ok()) return Done(s);
    agent_req_.set_machine_id(req_->machine_id());
    agent_req_.set_hostname(req_->hostname());
    agent_req_.set_platform(req_->platform());
    agent_req_.set_version(req_->version());
    agent_req_.set_registration_token_id(seat_.token_id());
    grpc::ClientContext* ctx = NextContext();
    GatedCall(
        *b_.agents_gate,
        [this, ctx](Completion cb) {
          b_.agents->async()->RegisterAgent(ctx, &agent_req_, &agent_, std::move(cb));
        },
        [this](const grpc::Status& s) { OnAgent(s); });
  }

  void OnAgent(const grpc::Status& s) {
    if (!s.ok()) return ReleaseSeatThenFail(seat_.seat_id(), s);
    resp_->set_agent_id(agent_.id());
    creds_req_.set_agent_id(agent_.id());
    creds_req_.set_seat_id(seat_.seat_id());
    grpc::ClientContext* ctx = NextContext();
    GatedCall(
        *b_.auth_gate,
        [this, ctx](Completion cb) {
          b_.auth->async()->IssueAgentCredentials(ctx, &creds_req_, resp_->mutable_credentials(),
                                                  std::move(cb));
        },
        [this](const grpc::Status& s) { OnCredentials(s); });
  }

  void OnCredentials(const grpc::Status& s) {
    if (!s.ok()) return Done(s);
    grpc::ClientContext* ctx = NextContext();
    GatedCall(
        *b_.updates_gate,
        [this, ctx](Completion cb) {
          b_.updates->async()->ListSigningKeys(ctx, &keys_req_, &keys_, std::move(cb));
        },
        [this](const grpc::Status& s) { OnKeys(s); });
  }

  void OnKeys(const grpc::Status& s) {
    if (!s.ok()) return Done(s);
    for (const auto& k : keys_.keys()) *resp_->add_signing_keys() = k;
    LogInfo(absl::StrCat("registered agent ", agent_.id(), " (", req_->hostname(), ", ",
                         req_->version(), ")"));
    Done(grpc::Status::OK);
  }

  const v1::RegisterRequest* req_;
  v1::RegisterResponse* resp_;
  v1::ConsumeRegistrationSeatRequest seat_req_;
  v1::ConsumeRegistrationSeatResponse seat_;
  v1::RegisterAgentRequest agent_req_;
  v1::Agent agent_;
  v1::IssueAgentCredentialsRequest creds_req_;
  v1::ListSigningKeysRequest keys_req_;
  v1::ListSigningKeysResponse keys_;
};

}  // namespace

grpc::ServerUnaryReactor* AgentGatewayImpl::Register(grpc::CallbackServerContext* ctx,
                                                     const v1::RegisterRequest* req,
                                                     v1::RegisterResponse* resp) {
  if (absl::Status s = deps_.limits.registration.Acquire(SourceIp(ctx->peer())); !s.ok()) {
    return Reject(ctx, s);
  }
  // Every field is checked here, before the seat is taken: nothing unchecked is stored.
  for (absl::Status s :
       {ValidateText("registration_token", req->registration_token(), 200, false),
        ValidateMachineId("machine_id", req->machine_id()),
        ValidateText("hostname", req->hostname(), 255),
        ValidateText("platform", req->platform(), 64), Version::Parse(req->version()).status()}) {
    if (!s.ok()) return Reject(ctx, absl::InvalidArgumentError(s.message()));
  }
  if (std::string header = Metadata(*ctx, "x-machine-id");
      !header.empty() && header != req->machine_id()) {
    return Reject(ctx, absl::InvalidArgumentError("x-machine-id does not match machine_id"));
  }
  return (new RegisterFlow(ctx, req, resp, deps_.backends))->Start();
}

namespace {

// Refresh for agents, in the order that keeps unauthenticated callers from changing
// anything: (1) auth checks, changing nothing, that the refresh token is a live agent
// session of the agent named; (2) only then the binding and block state are checked
// (a mismatch there counts a violation and may block: the caller has proved it holds
// the agent's token); (3) the token rotates, auth re-checking everything in its
// transaction.
class RefreshFlow final : public BackendFlow {
 public:
  RefreshFlow(grpc::CallbackServerContext* ctx, const v1::RefreshAgentRequest* req,
              v1::TokenPair* resp, Backends& b)
      : BackendFlow(ctx, b, Actor{"", "agent", ctx->peer()}), resp_(resp) {
    authorize_.set_agent_id(req->agent_id());
    authorize_.set_machine_id(Metadata(*ctx, "x-machine-id"));
    authorize_.set_source(ctx->peer());
    refresh_.set_refresh_token(req->refresh_token());
    refresh_.set_audience(kAgentAudience);
    refresh_.set_subject(req->agent_id());
  }

  grpc::ServerUnaryReactor* Start() {
    grpc::ServerUnaryReactor* reactor = this->reactor();
    refresh_.set_check_only(true);
    CallRefresh([this](const grpc::Status& s) { OnTokenChecked(s); });
    return reactor;
  }

 private:
  void CallRefresh(std::function<void(const grpc::Status&)> then) {
    grpc::ClientContext* ctx = NextContext();
    GatedCall(
        *b_.auth_gate,
        [this, ctx](Completion cb) {
          b_.auth->async()->Refresh(ctx, &refresh_, resp_, std::move(cb));
        },
        std::move(then));
  }

  void OnTokenChecked(const grpc::Status& s) {
    resp_->Clear();
    if (!s.ok()) return Done(s);
    grpc::ClientContext* ctx = NextContext();
    GatedCall(
        *b_.agents_gate,
        [this, ctx](Completion cb) {
          b_.agents->async()->AuthorizeAgent(ctx, &authorize_, &agent_, std::move(cb));
        },
        [this](const grpc::Status& s) { OnAuthorized(s); });
  }

  void OnAuthorized(const grpc::Status& s) {
    if (!s.ok()) return Done(s);
    refresh_.set_check_only(false);
    CallRefresh([this](const grpc::Status& s) { OnRefreshed(s); });
  }

  void OnRefreshed(const grpc::Status& s) {
    if (s.ok() && resp_->subject() != authorize_.agent_id()) {  // auth checked; belt and braces
      resp_->Clear();
      return Done(grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                               "refresh token belongs to another agent"));
    }
    Done(s);
  }

  v1::TokenPair* resp_;
  v1::AuthorizeAgentRequest authorize_;
  v1::Agent agent_;
  v1::RotateRefreshRequest refresh_;
};

}  // namespace

grpc::ServerUnaryReactor* AgentGatewayImpl::RefreshCredentials(grpc::CallbackServerContext* ctx,
                                                               const v1::RefreshAgentRequest* req,
                                                               v1::TokenPair* resp) {
  if (absl::Status s = deps_.limits.login.Acquire(SourceIp(ctx->peer())); !s.ok()) {
    return Reject(ctx, s);
  }
  if (req->refresh_token().empty() || req->agent_id().empty()) {
    return Reject(ctx, absl::InvalidArgumentError("refresh_token and agent_id are required"));
  }
  if (absl::Status s = ValidateMachineId("x-machine-id", Metadata(*ctx, "x-machine-id")); !s.ok()) {
    return Reject(ctx, s);
  }
  if (absl::Status s = ValidateText("agent_id", req->agent_id(), 64); !s.ok()) {
    return Reject(ctx, s);
  }
  return (new RefreshFlow(ctx, req, resp, deps_.backends))->Start();
}

grpc::ServerWriteReactor<v1::DownloadChunk>* AgentGatewayImpl::Download(
    grpc::CallbackServerContext* ctx, const v1::DownloadRequest* req) {
  return new DownloadRelay(ctx, req, deps_.backends, deps_.authn);
}

grpc::ServerBidiReactor<v1::AgentMessage, v1::ServerMessage>* AgentGatewayImpl::Connect(
    grpc::CallbackServerContext* ctx) {
  return new AgentStream(ctx, deps_);
}

}  // namespace redflag::gateway
