// A check-in over the per-agent rate limit is answered on the stream (SlowDown) and the
// stream stays; before, the stream was ended and the agent paid a reconnect and a full
// authorisation for every check-in it sent too early.
#include <catch2/catch.hpp>
#include <thread>

#include "common/status.h"
#include "tests/support/cluster.h"
#include "tests/support/rate_limits.h"
#include "tests/support/test_env.h"

using namespace redflag;
using namespace redflag::testing;

namespace {

// One check-in message with sequence number `seq`.
v1::AgentMessage CheckIn(uint64_t seq) {
  v1::AgentMessage m;
  m.set_seq(seq);
  m.mutable_check_in()->set_version("0.2.0");
  return m;
}

}  // namespace

TEST_CASE("a check-in over the rate limit is told to slow down and the stream stays",
          "[e2e][ratelimit][stream]") {
  auto& c = Cluster::Get();
  int port = 0, metrics = 0;
  auto gateway = c.StartGateway({}, &port, "127.0.0.1", &metrics);
  // One check-in every 2 s, burst 1 (a security setting: every gateway applies it).
  ScopedRateLimits tight({{"check_in", "0.5:1"}}, {metrics});
  const std::string address = "localhost:" + std::to_string(port);
  const std::string machine = RandomMachineId();
  v1::RegisterResponse reg;
  REQUIRE(RegisterAgent(c.NewRegistrationToken(1), machine, "0.2.0", &reg).ok());

  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  Cluster::Authorize(ctx, reg.credentials().access_token());
  ctx.AddMetadata("x-machine-id", machine);
  auto stub = v1::AgentGateway::NewStub(
      MakeChannel(address, TlsChannelCredentials(ReadFile(PkiFile("public-ca.crt")))));
  auto stream = stub->Connect(&ctx);
  REQUIRE(stream->Write(HelloMessage(reg.agent_id(), machine, "0.2.0")));
  v1::ServerMessage m;
  REQUIRE(stream->Read(&m));
  REQUIRE(m.has_hello_ack());
  // Reads until a check-in answer (instructions may come in between).
  auto answer = [&] {
    while (stream->Read(&m)) {
      if (m.has_check_in_ack() || m.has_slow_down()) return true;
    }
    return false;
  };

  REQUIRE(stream->Write(CheckIn(2)));
  REQUIRE(answer());
  CHECK(m.check_in_ack().ack_seq() == 2);
  REQUIRE(stream->Write(CheckIn(3)));  // at once: over the limit
  REQUIRE(answer());
  REQUIRE(m.has_slow_down());
  CHECK(m.slow_down().ack_seq() == 3);
  const int retry_after = m.slow_down().retry_after_seconds();
  CHECK(retry_after >= 1);
  CHECK(retry_after <= 2);
  CHECK(m.slow_down().check_in_interval_seconds() >= retry_after);
  // The same stream, after the delay it was given, is served again.
  std::this_thread::sleep_for(std::chrono::seconds(retry_after));
  REQUIRE(stream->Write(CheckIn(4)));
  REQUIRE(answer());
  CHECK(m.check_in_ack().ack_seq() == 4);

  // An agent that ignores ten answers in a row loses the stream, with the retry delay.
  for (uint64_t seq = 5; seq < 16; ++seq) stream->Write(CheckIn(seq));
  int slow_downs = 0;
  while (answer()) slow_downs += m.has_slow_down() ? 1 : 0;
  grpc::Status end = stream->Finish();
  CHECK(slow_downs == 10);
  CHECK(end.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(RetryDelayOf(end).has_value());
}

TEST_CASE("a real agent checking in too often adopts the server's pace without reconnecting",
          "[e2e][ratelimit][stream]") {
  auto& c = Cluster::Get();
  int port = 0, metrics = 0;
  auto gateway = c.StartGateway({}, &port, "127.0.0.1", &metrics);
  // The shared cluster asks for a check-in every second; the gateways allow one per 2 s.
  ScopedRateLimits tight({{"check_in", "0.5:1"}}, {metrics});
  std::string root = MakeMachineTree("slow-down");
  auto agent =
      StartAgent("slow-down", root, "localhost:" + std::to_string(port), c.NewRegistrationToken(1));
  INFO(ReadFile(agent->log_path()));
  REQUIRE(WaitForLog(*agent, "over the server's rate limit", 15000));
  int acks = CountInLog(*agent, "acknowledged");
  REQUIRE(WaitForLog(*agent, "acknowledged", 10000, acks + 2));
  // Still the first stream, and checking in at the slower pace without further refusals.
  CHECK(CountInLog(*agent, "connected; checking in") == 1);
  CHECK(CountInLog(*agent, "over the server's rate limit") <= 2);
}
