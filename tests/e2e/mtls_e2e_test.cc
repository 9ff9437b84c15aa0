// Internal services accept only mTLS clients from the internal CA, and each RPC checks
// which service is calling.
#include <catch2/catch.hpp>

#include "redflag/v1/updates.grpc.pb.h"
#include "tests/support/cluster.h"
#include "tests/support/test_env.h"

using namespace redflag;
using namespace redflag::testing;

namespace {

std::shared_ptr<grpc::ChannelCredentials> ClientCert(const std::string& name,
                                                     const std::string& ca = "internal-ca.crt") {
  TlsMaterial m{ReadFile(PkiFile(ca)), ReadFile(PkiFile(name + ".crt")),
                ReadFile(PkiFile(name + ".key"))};
  return MutualTlsChannelCredentials(m);
}

// One cheap call to each internal service.
grpc::Status CallService(const std::string& service,
                         std::shared_ptr<grpc::ChannelCredentials> creds) {
  auto ch = Cluster::Get().InternalChannel(service, std::move(creds));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (service == "auth") {
    v1::ListRegistrationTokensResponse r;
    return v1::AuthService::NewStub(ch)->ListRegistrationTokens(&ctx, {}, &r);
  }
  if (service == "agents") {
    v1::ListAgentsResponse r;
    return v1::AgentsService::NewStub(ch)->ListAgents(&ctx, {}, &r);
  }
  v1::ListSigningKeysResponse r;
  return v1::UpdatesService::NewStub(ch)->ListSigningKeys(&ctx, {}, &r);
}

}  // namespace

TEST_CASE("internal services accept the gateway's certificate", "[e2e][mtls]") {
  for (const char* svc : {"auth", "agents", "updates"}) {
    INFO(svc);
    grpc::Status s = CallService(svc, ClientCert("gateway"));
    CHECK(s.error_message() == "");
    CHECK(s.ok());
  }
}

TEST_CASE("internal services refuse a client without a certificate", "[e2e][mtls]") {
  for (const char* svc : {"auth", "agents", "updates"}) {
    INFO(svc);
    grpc::Status s = CallService(svc, TlsChannelCredentials(ReadFile(PkiFile("internal-ca.crt"))));
    CHECK(s.error_code() == grpc::StatusCode::UNAVAILABLE);
  }
}

TEST_CASE("internal services refuse a certificate not issued by the internal CA", "[e2e][mtls]") {
  // The rogue certificate even claims the gateway's identity URI.
  for (const char* svc : {"auth", "agents", "updates"}) {
    INFO(svc);
    grpc::Status s = CallService(svc, ClientCert("rogue-gateway"));
    CHECK(s.error_code() == grpc::StatusCode::UNAVAILABLE);
  }
}

TEST_CASE("internal services refuse a valid certificate of the wrong service", "[e2e][mtls]") {
  grpc::Status s = CallService("auth", ClientCert("agents"));
  CHECK(s.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK_THAT(s.error_message(), Catch::Contains("\"agents\" may not call"));
  s = CallService("agents", ClientCert("updates"));
  CHECK(s.error_code() == grpc::StatusCode::PERMISSION_DENIED);
}
