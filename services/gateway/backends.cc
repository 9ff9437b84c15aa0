#include "services/gateway/backends.h"

#include "common/config.h"
#include "common/log.h"

namespace redflag::gateway {

absl::StatusOr<GateLimits> GateLimits::FromEnv() {
  GateLimits l;
  absl::StatusOr<int64_t> in_flight = Env::Int("REDFLAG_BACKEND_MAX_IN_FLIGHT", 24, 1, 1024);
  if (!in_flight.ok()) return in_flight.status();
  absl::StatusOr<int64_t> downloads = Env::Int("REDFLAG_BACKEND_MAX_DOWNLOADS", 16, 1, 1024);
  if (!downloads.ok()) return downloads.status();
  l.max_in_flight = static_cast<size_t>(*in_flight);
  l.max_downloads = static_cast<size_t>(*downloads);
  return l;
}

absl::StatusOr<Backends> Backends::Connect(const TlsMaterial& tls, const GateLimits& limits) {
  auto creds = MutualTlsChannelCredentials(tls);
  Backends b;
  b.auth_gate = std::make_unique<BackendGate>("auth", limits.max_in_flight, limits.max_queued);
  b.agents_gate = std::make_unique<BackendGate>("agents", limits.max_in_flight, limits.max_queued);
  b.updates_gate =
      std::make_unique<BackendGate>("updates", limits.max_in_flight, limits.max_queued);
  b.download_gate =
      std::make_unique<BackendGate>("downloads", limits.max_downloads, limits.max_queued);
  b.operator_gate = std::make_unique<BackendGate>("operators", 32, 10'000);
  b.auth = v1::AuthService::NewStub(
      MakeChannel(Env::Optional("REDFLAG_AUTH_ADDR", "localhost:9101"), creds));
  b.agents = v1::AgentsService::NewStub(
      MakeChannel(Env::Optional("REDFLAG_AGENTS_ADDR", "localhost:9102"), creds));
  b.updates = v1::UpdatesService::NewStub(
      MakeChannel(Env::Optional("REDFLAG_UPDATES_ADDR", "localhost:9103"), creds));
  return b;
}

std::vector<BackendGate*> Backends::gates() const {
  return {auth_gate.get(), agents_gate.get(), updates_gate.get(), download_gate.get(),
          operator_gate.get()};
}

std::function<void(const std::string&, const Actor&)> AuthFailureReporter(Backends& backends) {
  return [&backends](const std::string& reason, const Actor& actor) {
    struct Call {
      std::unique_ptr<grpc::ClientContext> ctx;
      v1::ReportAuthFailureRequest req;
      v1::LogoutResponse resp;
    };
    auto* call = new Call;
    call->ctx = BackendContext(actor, absl::Seconds(5));
    call->req.set_reason(reason);
    call->req.set_actor(actor.subject);
    GatedCall(
        *backends.auth_gate,
        [&backends, call](Completion cb) {
          backends.auth->async()->ReportAuthFailure(call->ctx.get(), &call->req, &call->resp,
                                                    std::move(cb));
        },
        [call](const grpc::Status& s) {
          if (!s.ok()) LogWarn("cannot report an auth failure: " + s.error_message());
          delete call;
        });
  };
}

void GatedCall(BackendGate& gate, std::function<void(Completion)> issue,
               std::function<void(const grpc::Status&)> done) {
  gate.Run([issue = std::move(issue), done = std::move(done)](const absl::Status& admitted,
                                                              std::function<void()> release) {
    if (!admitted.ok()) {
      done(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, std::string(admitted.message())));
      return;
    }
    // Released after `done`: a gate is idle only once its callbacks have returned, which
    // is what the gateway's shutdown waits for.
    issue([release = std::move(release), done](const grpc::Status& s) {
      done(s);
      release();
    });
  });
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
