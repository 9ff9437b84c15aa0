#include "services/gateway/backends.h"

#include "common/config.h"
#include "common/log.h"

namespace redflag::gateway {

absl::StatusOr<Backends> Backends::Connect(const TlsMaterial& tls) {
  auto creds = MutualTlsChannelCredentials(tls);
  Backends b;
  b.auth = v1::AuthService::NewStub(
      MakeChannel(Env::Optional("REDFLAG_AUTH_ADDR", "localhost:9101"), creds));
  b.agents = v1::AgentsService::NewStub(
      MakeChannel(Env::Optional("REDFLAG_AGENTS_ADDR", "localhost:9102"), creds));
  b.updates = v1::UpdatesService::NewStub(
      MakeChannel(Env::Optional("REDFLAG_UPDATES_ADDR", "localhost:9103"), creds));
  return b;
}

std::function<void(const std::string&, const Actor&)> AuthFailureReporter(
    v1::AuthService::Stub* auth) {
  return [auth](const std::string& reason, const Actor& actor) {
    struct Call {
      std::unique_ptr<grpc::ClientContext> ctx;
      v1::ReportAuthFailureRequest req;
      v1::LogoutResponse resp;
    };
    auto* call = new Call;
    call->ctx = BackendContext(actor, absl::Seconds(5));
    call->req.set_reason(reason);
    call->req.set_actor(actor.subject);
    auth->async()->ReportAuthFailure(
        call->ctx.get(), &call->req, &call->resp, [call](const grpc::Status& s) {
          if (!s.ok()) {
            LogWarn("cannot report an auth failure: " + s.error_message());
          }
          delete call;
        });
  };
}

std::unique_ptr<grpc::ClientContext> BackendContext(absl::Duration timeout) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return ctx;
}

std::unique_ptr<grpc::ClientContext> BackendContext(const Actor& actor, absl::Duration timeout) {
  auto ctx = BackendContext(timeout);
  AttachActor(*ctx, actor);
  return ctx;
}

}  // namespace redflag::gateway
