// The gateway refuses operator calls without a valid operator token.
#include <catch2/catch.hpp>

#include "absl/strings/str_split.h"
#include "common/encoding.h"
#include "tests/support/cluster.h"
#include "tests/support/test_env.h"

using namespace redflag;
using namespace redflag::testing;

namespace {

grpc::Status ListAgentsWith(const std::string& token) {
  grpc::ClientContext ctx;
  if (!token.empty()) Cluster::Authorize(ctx, token);
  v1::ListAgentsResponse resp;
  return Cluster::Get().Operator()->ListAgents(&ctx, {}, &resp);
}

}  // namespace

TEST_CASE("operator calls without a token are refused", "[e2e][auth]") {
  grpc::Status s = ListAgentsWith("");
  CHECK(s.error_code() == grpc::StatusCode::UNAUTHENTICATED);
}

TEST_CASE("a token with a tampered payload is refused", "[e2e][auth]") {
  std::string token = Cluster::Get().AdminToken();
  std::vector<std::string> parts = absl::StrSplit(token, '.');
  std::string payload = *Base64UrlDecode(parts[1]);
  payload.replace(payload.find("\"admin\""), 7, "\"viewr\"");
  std::string forged = parts[0] + "." + Base64UrlEncode(payload) + "." + parts[2];
  grpc::Status s = ListAgentsWith(forged);
  CHECK(s.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK_THAT(s.error_message(), Catch::Contains("bad signature"));
}

TEST_CASE("an unsigned alg=none token is refused", "[e2e][auth]") {
  std::string token = Cluster::Get().AdminToken();
  std::vector<std::string> parts = absl::StrSplit(token, '.');
  std::string none = Base64UrlEncode(R"({"alg":"none","typ":"JWT"})") + "." + parts[1] + ".";
  grpc::Status s = ListAgentsWith(none);
  CHECK(s.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK_THAT(s.error_message(), Catch::Contains("algorithm not allowed"));
}

TEST_CASE("an agent's token does not open the operator API", "[e2e][auth]") {
  v1::RegisterResponse reg;
  REQUIRE(
      RegisterAgent(Cluster::Get().NewRegistrationToken(1), RandomMachineId(), "0.2.0", &reg).ok());
  grpc::Status s = ListAgentsWith(reg.credentials().access_token());
  CHECK(s.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK_THAT(s.error_message(), Catch::Contains("wrong audience"));
}

TEST_CASE("a wrong password and an unknown user get the same refusal", "[e2e][auth]") {
  auto op = Cluster::Get().Operator();
  for (const char* user : {"admin", "no-such-user"}) {
    grpc::ClientContext ctx;
    v1::LoginRequest req;
    req.set_username(user);
    req.set_password("definitely-not-the-password");
    v1::TokenPair resp;
    grpc::Status s = op->Login(&ctx, req, &resp);
    CHECK(s.error_code() == grpc::StatusCode::UNAUTHENTICATED);
    CHECK(s.error_message() == "invalid username or password");
    CHECK(resp.access_token().empty());
  }
}
