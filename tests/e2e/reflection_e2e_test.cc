// Operators need no .proto files: reflection and health are served, and a third-party
// client (grpc-js + grpc-js-reflection-client, as grpcurl would) can drive the API.
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "absl/strings/str_split.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/support/cluster.h"
#include "tests/support/test_env.h"

using namespace redflag;
using namespace redflag::testing;

TEST_CASE("a reflection-only client lists the services and operates the gateway",
          "[e2e][reflection]") {
  auto& c = Cluster::Get();
  std::string dir = std::getenv("REDFLAG_TEST_NODE_DIR");
  std::string cmd = "cd '" + dir + "' && REDFLAG_ADMIN_PASSWORD='" +
                    TestVar("REDFLAG_ADMIN_PASSWORD") + "' node reflect.js " + c.gateway_address() +
                    " '" + PkiFile("public-ca.crt") + "'";
  auto [out, rc] = RunCommand(cmd);
  INFO(out);
  REQUIRE(rc == 0);
  // "key value" lines (see reflect.js); not google.protobuf.Struct, which crashes under TSan.
  std::vector<std::string> services, methods;
  std::map<std::string, std::string> values;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(line, absl::MaxSplits(' ', 1));
    if (kv.first == "service") services.push_back(kv.second);
    if (kv.first == "method") methods.push_back(kv.second);
    values[kv.first] = kv.second;
  }
  CHECK_THAT(services, Catch::VectorContains(std::string("redflag.v1.OperatorService")));
  CHECK_THAT(services, Catch::VectorContains(std::string("redflag.v1.AgentGateway")));
  CHECK_THAT(services, Catch::VectorContains(std::string("grpc.health.v1.Health")));
  CHECK_THAT(services,
             Catch::VectorContains(std::string("grpc.reflection.v1alpha.ServerReflection")));
  CHECK(methods.size() >= 10);
  // UNAUTHENTICATED (16) without a token, then a real answer with one.
  CHECK(values["anonymous_code"] == "16");
  REQUIRE(values.count("agent_count") == 1);
  CHECK(std::stoi(values["agent_count"]) >= 0);
}

TEST_CASE("every server answers the standard health check", "[e2e][health]") {
  auto& c = Cluster::Get();
  auto check = [](std::shared_ptr<grpc::Channel> ch) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    grpc::Status s = grpc::health::v1::Health::NewStub(ch)->Check(&ctx, req, &resp);
    CHECK(s.error_message() == "");
    return resp.status();
  };
  CHECK(check(MakeChannel(c.gateway_address(),
                          TlsChannelCredentials(ReadFile(PkiFile("public-ca.crt"))))) ==
        grpc::health::v1::HealthCheckResponse::SERVING);
  // The plaintext probe port answers health and nothing else.
  auto probe = grpc::CreateChannel("127.0.0.1:" + std::to_string(c.gateway_health_port()),
                                   grpc::InsecureChannelCredentials());
  CHECK(check(probe) == grpc::health::v1::HealthCheckResponse::SERVING);
  {
    grpc::ClientContext ctx;
    v1::ListAgentsResponse r;
    CHECK(v1::OperatorService::NewStub(probe)->ListAgents(&ctx, {}, &r).error_code() ==
          grpc::StatusCode::UNIMPLEMENTED);
  }
  TlsMaterial gw{ReadFile(PkiFile("internal-ca.crt")), ReadFile(PkiFile("gateway.crt")),
                 ReadFile(PkiFile("gateway.key"))};
  for (const char* svc : {"auth", "agents", "updates"}) {
    INFO(svc);
    CHECK(check(c.InternalChannel(svc, MutualTlsChannelCredentials(gw))) ==
          grpc::health::v1::HealthCheckResponse::SERVING);
  }
}
