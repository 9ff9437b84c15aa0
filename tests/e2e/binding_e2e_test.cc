// Enrollment and every stream open are checked: seats, cloned machines, machine binding,
// minimum version and downgrades.
#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "tests/support/cluster.h"
#include "tests/support/test_env.h"

using namespace redflag;
using namespace redflag::testing;

namespace {

v1::Agent GetAgent(const std::string& id) {
  v1::Agent a;
  grpc::Status s = GetAgentAsAdmin(id, &a);
  REQUIRE(s.error_message() == "");
  return a;
}

}  // namespace

TEST_CASE("concurrent registrations beyond a token's seats: exactly the seat count succeed",
          "[e2e][seats]") {
  std::string secret = Cluster::Get().NewRegistrationToken(5);
  std::atomic<int> ok{0}, exhausted{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 20; ++i) {
    threads.emplace_back([&] {
      v1::RegisterResponse resp;
      grpc::Status s = RegisterAgent(secret, RandomMachineId(), "0.2.0", &resp);
      if (s.ok()) {
        ++ok;
      } else if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
        ++exhausted;
      } else {
        ++other;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(ok == 5);
  CHECK(exhausted == 15);
  CHECK(other == 0);
}

TEST_CASE("a cloned machine cannot register beside the original", "[e2e][binding]") {
  std::string secret = Cluster::Get().NewRegistrationToken(2);
  std::string machine = RandomMachineId();
  v1::RegisterResponse first, second;
  REQUIRE(RegisterAgent(secret, machine, "0.2.0", &first).ok());
  grpc::Status s = RegisterAgent(secret, machine, "0.2.0", &second);
  CHECK(s.error_code() == grpc::StatusCode::ALREADY_EXISTS);
  CHECK_THAT(s.error_message(), Catch::Contains(first.agent_id()));
  // The refused registration gave its seat back: another machine can still enroll.
  v1::RegisterResponse third;
  CHECK(RegisterAgent(secret, RandomMachineId(), "0.2.0", &third).ok());
}

TEST_CASE("copied credentials on another machine are refused, counted and then blocked",
          "[e2e][binding]") {
  std::string machine = RandomMachineId();
  v1::RegisterResponse reg;
  REQUIRE(RegisterAgent(Cluster::Get().NewRegistrationToken(1), machine, "0.2.0", &reg).ok());
  const std::string& token = reg.credentials().access_token();
  REQUIRE(OpenStream(reg.agent_id(), token, machine, "0.2.0").ok());

  std::string other = RandomMachineId();
  for (int i = 1; i <= 3; ++i) {
    grpc::Status s = OpenStream(reg.agent_id(), token, other, "0.2.0");
    CHECK(s.error_code() == grpc::StatusCode::PERMISSION_DENIED);
    CHECK(GetAgent(reg.agent_id()).binding_violations() == i);
  }
  v1::Agent a = GetAgent(reg.agent_id());
  CHECK(a.status() == v1::BLOCKED);
  CHECK_FALSE(a.compliant());
  // Blocked after the threshold: even the genuine machine is now refused.
  grpc::Status s = OpenStream(reg.agent_id(), token, machine, "0.2.0");
  CHECK(s.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK_THAT(s.error_message(), Catch::Contains("blocked"));
}

TEST_CASE("an agent below the minimum version cannot register", "[e2e][version]") {
  v1::RegisterResponse reg;
  grpc::Status s =
      RegisterAgent(Cluster::Get().NewRegistrationToken(1), RandomMachineId(), "0.1.21", &reg);
  CHECK(s.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK_THAT(s.error_message(), Catch::Contains("below the minimum 0.1.22"));
}

TEST_CASE("an agent reporting a lower version than before is refused as a downgrade",
          "[e2e][version]") {
  std::string machine = RandomMachineId();
  v1::RegisterResponse reg;
  REQUIRE(RegisterAgent(Cluster::Get().NewRegistrationToken(1), machine, "0.3.0", &reg).ok());
  const std::string& token = reg.credentials().access_token();
  grpc::Status s = OpenStream(reg.agent_id(), token, machine, "0.2.9");
  CHECK(s.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK_THAT(s.error_message(), Catch::Contains("downgrade"));
  CHECK(OpenStream(reg.agent_id(), token, machine, "0.3.1").ok());
}
