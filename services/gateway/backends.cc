#include "services/gateway/backends.h"

#include "common/config.h"

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

std::unique_ptr<grpc::ClientContext> BackendContext(absl::Duration timeout) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return ctx;
}

}  // namespace redflag::gateway
