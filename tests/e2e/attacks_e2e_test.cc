// The red team's findings (issue 10), each performed as the attacker would through the
// public gateway: the attack is refused with the exact status, nothing changes in the
// database, the refusal is counted and recorded — and the legitimate owner still gets in.
#include <catch2/catch.hpp>
#include <functional>
#include <thread>

#include "common/crypto.h"
#include "common/encoding.h"
#include "common/pg.h"
#include "common/security_events.h"
#include "common/status.h"
#include "common/tls.h"
#include "tests/support/cluster.h"
#include "tests/support/test_env.h"

using namespace redflag;
using namespace redflag::testing;

namespace {

grpc::Status RefreshOperator(const std::string& token, v1::TokenPair* out) {
  grpc::ClientContext ctx;
  v1::RefreshRequest req;
  req.set_refresh_token(token);
  return Cluster::Get().Operator()->Refresh(&ctx, req, out);
}

int64_t Count(const std::string& sql, const std::vector<std::string>& params) {
  return std::stoll(QueryColumn(sql, params)[0]);
}

// Security events naming `actor` (any type).
int64_t EventsNaming(const std::string& actor) {
  return Count("SELECT count(*) FROM audit.security_events WHERE actor = $1", {actor});
}

int64_t Violations(const std::string& agent_id) {
  return Count("SELECT binding_violations FROM agents.agents WHERE id = $1", {agent_id});
}

bool Blocked(const std::string& agent_id) {
  return QueryColumn("SELECT blocked_at IS NOT NULL FROM agents.agents WHERE id = $1",
                     {agent_id})[0] == "t";
}

// Sum of a counter's samples whose label set contains `label` on a service's /metrics.
double MetricSum(const std::string& service, const std::string& name, const std::string& label) {
  std::string body = HttpGet(Cluster::Get().metrics_port(service), "/metrics");
  double sum = 0;
  size_t pos = 0;
  while ((pos = body.find(name + "{", pos)) != std::string::npos) {
    size_t eol = body.find('\n', pos);
    std::string line = body.substr(pos, eol - pos);
    if (line.find(label) != std::string::npos) sum += std::stod(line.substr(line.rfind(' ') + 1));
    pos = eol;
  }
  return sum;
}

// Presents a revoked token through `refused` (true once the attempt was refused) until it is
// refused, for at most 5 s. Returns when, after the call, the last attempt that was still
// accepted began: zero when the first was refused, infinite when none was. "Refused within a
// second" is this staying under a second: every attempt begun later was refused. Timing the
// attempts' ends instead would charge revocation for how long each attempt itself takes (a
// stream's hello round trip exceeds 0.5 s under ASan on a loaded 2-core machine).
absl::Duration LastAcceptedAttempt(const std::function<bool()>& refused) {
  const absl::Time start = absl::Now();
  absl::Duration last_accepted = absl::ZeroDuration();
  while (absl::Now() - start < absl::Seconds(5)) {
    const absl::Time began = absl::Now();
    if (refused()) return last_accepted;
    last_accepted = began - start;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::InfiniteDuration();
}

struct Enrolled {
  std::string machine;
  v1::RegisterResponse reg;
};

Enrolled Enroll() {
  Enrolled e{RandomMachineId(), {}};
  REQUIRE(RegisterAgent(Cluster::Get().NewRegistrationToken(1), e.machine, "0.2.0", &e.reg).ok());
  return e;
}

}  // namespace

TEST_CASE("attack 1: refresh calls without the agent's token cannot count violations or block it",
          "[e2e][attack][refresh]") {
  Enrolled victim = Enroll();
  const std::string& id = victim.reg.agent_id();
  int64_t events_before = EventsNaming(id);
  double refused_before =
      MetricSum("auth", "redflag_auth_failures_total", "reason=\"unknown_refresh_token\"");

  // The attack as reported: garbage refresh token, the victim's id, a wrong machine id.
  for (int i = 0; i < 5; ++i) {
    v1::TokenPair out;
    grpc::Status s =
        RefreshAgent(id, RandomMachineId(), "rf_rt_garbage-" + std::to_string(i), &out);
    CHECK(s.error_code() == grpc::StatusCode::UNAUTHENTICATED);
    CHECK(out.access_token().empty());
  }
  // Another agent's genuine refresh token does not authenticate as the victim either.
  Enrolled other = Enroll();
  v1::TokenPair out;
  grpc::Status s =
      RefreshAgent(id, RandomMachineId(), other.reg.credentials().refresh_token(), &out);
  CHECK(s.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK_THAT(s.error_message(), Catch::Contains("another agent"));

  CHECK(Violations(id) == 0);
  CHECK_FALSE(Blocked(id));
  CHECK(EventsNaming(id) == events_before);  // no event names the victim
  CHECK(MetricSum("auth", "redflag_auth_failures_total", "reason=\"unknown_refresh_token\"") >=
        refused_before + 5);

  // Nothing was spent: both genuine agents still refresh with the tokens they hold.
  v1::TokenPair fresh;
  CHECK(RefreshAgent(id, victim.machine, victim.reg.credentials().refresh_token(), &fresh).ok());
  CHECK(fresh.subject() == id);
  CHECK(RefreshAgent(other.reg.agent_id(), other.machine, other.reg.credentials().refresh_token(),
                     &fresh)
            .ok());
}

TEST_CASE("attack 1: the binding is still enforced once the caller holds the agent's token",
          "[e2e][attack][refresh]") {
  Enrolled a = Enroll();
  const std::string& id = a.reg.agent_id();
  v1::TokenPair out;
  // A stolen refresh token used from another machine: refused, counted, not rotated.
  grpc::Status s = RefreshAgent(id, RandomMachineId(), a.reg.credentials().refresh_token(), &out);
  CHECK(s.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(Violations(id) == 1);
  CHECK(Count("SELECT count(*) FROM audit.security_events WHERE type = 'MACHINE_ID_MISMATCH' "
              "AND actor = $1",
              {id}) == 1);
  CHECK(RefreshAgent(id, a.machine, a.reg.credentials().refresh_token(), &out).ok());
}

TEST_CASE("attack 5: an agent's refresh token does not refresh on the operator API",
          "[e2e][attack][refresh]") {
  Enrolled a = Enroll();
  const std::string& id = a.reg.agent_id();
  double before = MetricSum("auth", "redflag_auth_failures_total", "reason=\"wrong_session_kind\"");
  v1::TokenPair out;
  grpc::Status s = RefreshOperator(a.reg.credentials().refresh_token(), &out);
  CHECK(s.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(out.access_token().empty());
  CHECK(MetricSum("auth", "redflag_auth_failures_total", "reason=\"wrong_session_kind\"") ==
        before + 1);
  CHECK(Count("SELECT count(*) FROM audit.security_events WHERE type = 'AUTH_FAILURE' AND "
              "actor = $1 AND detail LIKE '%wrong_session_kind%'",
              {id}) == 1);
  // The token was neither rotated nor revoked: the agent refreshes through its own door.
  CHECK(Count("SELECT count(*) FROM auth.refresh_tokens WHERE token_hash = $1 AND rotated_at "
              "IS NULL",
              {Sha256Hex(a.reg.credentials().refresh_token())}) == 1);
  CHECK(RefreshAgent(id, a.machine, a.reg.credentials().refresh_token(), &out).ok());

  // A blocked agent's token is refused there too (it used to mint agent JWTs for it).
  Enrolled b = Enroll();
  v1::BlockAgentRequest block;
  block.set_id(b.reg.agent_id());
  block.set_reason("attack 5 test");
  {
    grpc::ClientContext ctx;
    Cluster::Authorize(ctx, Cluster::Get().AdminToken());
    v1::Agent blocked;
    REQUIRE(Cluster::Get().Operator()->BlockAgent(&ctx, block, &blocked).ok());
  }
  CHECK(RefreshOperator(b.reg.credentials().refresh_token(), &out).error_code() ==
        grpc::StatusCode::UNAUTHENTICATED);
  CHECK(RefreshAgent(b.reg.agent_id(), b.machine, b.reg.credentials().refresh_token(), &out)
            .error_code() == grpc::StatusCode::PERMISSION_DENIED);

  // And an operator's refresh token does not refresh as an agent.
  v1::LoginRequest login;
  login.set_username("admin");
  login.set_password(TestVar("REDFLAG_ADMIN_PASSWORD"));
  v1::TokenPair admin;
  {
    grpc::ClientContext ctx;
    REQUIRE(Cluster::Get().Operator()->Login(&ctx, login, &admin).ok());
  }
  CHECK(RefreshAgent("admin", a.machine, admin.refresh_token(), &out).error_code() ==
        grpc::StatusCode::UNAUTHENTICATED);
  CHECK(RefreshOperator(admin.refresh_token(), &out).ok());
}

TEST_CASE("attack 2: wrong passwords for admin from one source do not lock the admin out",
          "[e2e][attack][login]") {
  // A gateway on every local address: ::1 is the attacker, 127.0.0.1 the real admin.
  int port = 0;
  auto gateway = Cluster::Get().StartGateway({}, &port, "[::]");
  auto creds = TlsChannelCredentials(ReadFile(PkiFile("public-ca.crt")));
  auto attacker = v1::OperatorService::NewStub(
      MakeChannel("ipv6:[::1]:" + std::to_string(port), creds, "localhost"));
  auto owner = v1::OperatorService::NewStub(
      MakeChannel("ipv4:127.0.0.1:" + std::to_string(port), creds, "localhost"));
  auto login = [](v1::OperatorService::Stub& stub, const std::string& user,
                  const std::string& password) {
    grpc::ClientContext ctx;
    v1::LoginRequest req;
    req.set_username(user);
    req.set_password(password);
    v1::TokenPair out;
    return stub.Login(&ctx, req, &out);
  };
  const std::string password = TestVar("REDFLAG_ADMIN_PASSWORD");
  // A fresh attacker (an earlier run of this test in the same database left ::1 throttled).
  (void)QueryColumn("DELETE FROM auth.login_failures WHERE key LIKE '%@::1' RETURNING key", {});
  int64_t throttled_events = Count(
      "SELECT count(*) FROM audit.security_events WHERE type = 'LOGIN_THROTTLED' AND actor = "
      "'admin' AND source LIKE 'ipv6:%::1%'",
      {});
  // The shared auth throttles after 3 failures per (account, source), first for 2 s.
  std::vector<grpc::StatusCode> codes;
  for (int i = 0; i < 8; ++i) {
    codes.push_back(login(*attacker, "admin", "wrong-" + std::to_string(i)).error_code());
  }
  CHECK(codes[0] == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(codes[2] == grpc::StatusCode::UNAUTHENTICATED);
  for (size_t i = 3; i < codes.size(); ++i) CHECK(codes[i] == grpc::StatusCode::RESOURCE_EXHAUSTED);
  // The attacker's source is throttled even with the right password (no oracle)...
  grpc::Status guessed = login(*attacker, "admin", password);
  CHECK(guessed.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(RetryDelayOf(guessed).has_value());
  // ...an unknown account from there gets the same kind of answer...
  for (int i = 0; i < 3; ++i) (void)login(*attacker, "nobody-here", "wrong");
  CHECK(login(*attacker, "nobody-here", "wrong").error_code() ==
        grpc::StatusCode::RESOURCE_EXHAUSTED);
  // ...and the admin, from another address, logs in at once.
  CHECK(login(*owner, "admin", password).ok());
  CHECK(Count("SELECT count(*) FROM audit.security_events WHERE type = 'LOGIN_THROTTLED' AND "
              "actor = 'admin' AND source LIKE 'ipv6:%::1%'",
              {}) == throttled_events + 1);
  // Nothing account-wide was written.
  CHECK(Count("SELECT count(*) FROM auth.login_failures WHERE key = 'user:admin'", {}) == 0);
}

TEST_CASE("attack 3: bad tokens from an address do not lock out good clients behind it",
          "[e2e][attack][lockout]") {
  int port = 0;
  auto gateway = Cluster::Get().StartGateway(
      {{"REDFLAG_BAD_TOKEN_THRESHOLD", "3"}, {"REDFLAG_BAD_TOKEN_LOCKOUT_SECONDS", "60"}}, &port);
  std::string address = "localhost:" + std::to_string(port);
  auto ops = v1::OperatorService::NewStub(
      MakeChannel(address, TlsChannelCredentials(ReadFile(PkiFile("public-ca.crt")))));
  auto list = [&](const std::string& token) {
    grpc::ClientContext ctx;
    Cluster::Authorize(ctx, token);
    v1::ListAgentsResponse r;
    return ops->ListAgents(&ctx, {}, &r);
  };
  Enrolled neighbour = Enroll();  // an agent behind the same address (NAT)
  std::string last_event =
      QueryColumn("SELECT coalesce(max(id), 0) FROM audit.security_events", {})[0];
  for (int i = 0; i < 3; ++i) {
    CHECK(list("garbage").error_code() == grpc::StatusCode::UNAUTHENTICATED);
  }
  // The guesser is now refused outright, with a retry delay, and it is recorded.
  grpc::Status locked = list("garbage-again");
  CHECK(locked.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(RetryDelayOf(locked).has_value());
  bool recorded = false;
  for (int i = 0; i < 50 && !recorded; ++i) {
    recorded = Count(
                   "SELECT count(*) FROM audit.security_events WHERE type = 'AUTH_FAILURE' AND "
                   "detail LIKE '%source_locked_out%' AND id > $1::bigint",
                   {last_event}) > 0;
    if (!recorded) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(recorded);
  // Correctly authenticated clients from the same address are served: an operator...
  CHECK(list(Cluster::Get().AdminToken()).ok());
  // ...and an agent opening its stream.
  CHECK(OpenStream(neighbour.reg.agent_id(), neighbour.reg.credentials().access_token(),
                   neighbour.machine, "0.2.0", address)
            .ok());
}

TEST_CASE(
    "attack 6: access tokens die with their session, on every gateway replica, within a "
    "second",
    "[e2e][attack][revocation]") {
  auto& c = Cluster::Get();
  int port = 0;
  auto second = c.StartGateway({}, &port);
  auto replica = v1::OperatorService::NewStub(
      MakeChannel("localhost:" + std::to_string(port),
                  TlsChannelCredentials(ReadFile(PkiFile("public-ca.crt")))));
  auto list = [](v1::OperatorService::Stub& stub, const std::string& token) {
    grpc::ClientContext ctx;
    Cluster::Authorize(ctx, token);
    v1::ListAgentsResponse r;
    return stub.ListAgents(&ctx, {}, &r);
  };
  // Until both replicas refuse `token`: when the last attempt either still accepted began.
  auto refused_everywhere = [&](const std::string& token) {
    return LastAcceptedAttempt([&] {
      grpc::Status a = list(*c.Operator(), token), b = list(*replica, token);
      if (a.error_code() != grpc::StatusCode::UNAUTHENTICATED ||
          b.error_code() != grpc::StatusCode::UNAUTHENTICATED) {
        return false;
      }
      CHECK_THAT(a.error_message(), Catch::Contains("session revoked"));
      CHECK_THAT(b.error_message(), Catch::Contains("session revoked"));
      return true;
    });
  };
  auto login = [] {
    grpc::ClientContext ctx;
    v1::LoginRequest req;
    req.set_username("admin");
    req.set_password(TestVar("REDFLAG_ADMIN_PASSWORD"));
    v1::TokenPair out;
    REQUIRE(Cluster::Get().Operator()->Login(&ctx, req, &out).ok());
    return out;
  };

  SECTION("logout") {
    v1::TokenPair s = login();
    REQUIRE(list(*c.Operator(), s.access_token()).ok());
    REQUIRE(list(*replica, s.access_token()).ok());
    grpc::ClientContext ctx;
    Cluster::Authorize(ctx, s.access_token());
    v1::LogoutRequest req;
    req.set_refresh_token(s.refresh_token());
    v1::LogoutResponse resp;
    REQUIRE(c.Operator()->Logout(&ctx, req, &resp).ok());
    CHECK(refused_everywhere(s.access_token()) < absl::Seconds(1));
    // Only that session: the admin's other sessions, and a new login, still work.
    CHECK(list(*c.Operator(), c.AdminToken()).ok());
    CHECK(list(*replica, login().access_token()).ok());
  }
  SECTION("refresh-token reuse") {
    v1::TokenPair first = login(), second_pair, replay;
    REQUIRE(RefreshOperator(first.refresh_token(), &second_pair).ok());
    REQUIRE(list(*replica, second_pair.access_token()).ok());
    REQUIRE(RefreshOperator(first.refresh_token(), &replay).error_code() ==
            grpc::StatusCode::UNAUTHENTICATED);
    CHECK(refused_everywhere(second_pair.access_token()) < absl::Seconds(1));
    CHECK(refused_everywhere(first.access_token()) < absl::Seconds(1));
  }
  SECTION("another operator's refresh token does not end their session") {
    v1::TokenPair victim = login();
    std::string attacker = c.NewUser("logout-" + HexEncode(RandomBytes(3)), v1::VIEWER);
    grpc::ClientContext ctx;
    Cluster::Authorize(ctx, attacker);
    v1::LogoutRequest req;
    req.set_refresh_token(victim.refresh_token());
    v1::LogoutResponse resp;
    CHECK(c.Operator()->Logout(&ctx, req, &resp).ok());  // says nothing about the token
    absl::SleepFor(absl::Milliseconds(300));
    CHECK(list(*c.Operator(), victim.access_token()).ok());
  }
}

TEST_CASE("attack 6: an agent's access token dies when its refresh token is reused",
          "[e2e][attack][revocation]") {
  Enrolled a = Enroll();
  const std::string& id = a.reg.agent_id();
  v1::TokenPair b, cpair, replay;
  REQUIRE(RefreshAgent(id, a.machine, a.reg.credentials().refresh_token(), &b).ok());
  REQUIRE(RefreshAgent(id, a.machine, b.refresh_token(), &cpair).ok());
  REQUIRE(OpenStream(id, cpair.access_token(), a.machine, "0.2.0").ok());
  // The first token again, long after it was replaced: theft. The family is revoked...
  CHECK(RefreshAgent(id, a.machine, a.reg.credentials().refresh_token(), &replay).error_code() ==
        grpc::StatusCode::UNAUTHENTICATED);
  // ...and its live access token stops opening streams within a second.
  grpc::Status s;
  absl::Duration last_accepted = LastAcceptedAttempt([&] {
    s = OpenStream(id, cpair.access_token(), a.machine, "0.2.0");
    return s.error_code() == grpc::StatusCode::UNAUTHENTICATED;
  });
  CHECK(s.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK_THAT(s.error_message(), Catch::Contains("session revoked"));
  CHECK(last_accepted < absl::Seconds(1));
}

namespace {

// An agent stream held open by the test: hello sent, hello ack read.
class HeldStream {
 public:
  HeldStream(const std::string& address, const std::string& agent_id, const std::string& token,
             const std::string& machine) {
    stub_ = v1::AgentGateway::NewStub(MakeChannel(
        address, TlsChannelCredentials(ReadFile(PkiFile("public-ca.crt"))), "localhost"));
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    Cluster::Authorize(ctx_, token);
    ctx_.AddMetadata("x-machine-id", machine);
    stream_ = stub_->Connect(&ctx_);
    stream_->Write(HelloMessage(agent_id, machine, "0.2.0"));
    v1::ServerMessage reply;
    open_ = stream_->Read(&reply) && reply.has_hello_ack();
  }
  ~HeldStream() {
    ctx_.TryCancel();
    if (!finished_) (void)stream_->Finish();
  }
  bool open() const { return open_; }
  // Reads until the server ends the stream (or the deadline); returns its status.
  grpc::Status Ended() {
    v1::ServerMessage m;
    while (stream_->Read(&m)) {
      if (m.has_instruction()) instructions_.push_back(m.instruction());
    }
    finished_ = true;
    return stream_->Finish();
  }
  // Reads until an instruction arrives; false if the stream ends first.
  bool NextInstruction(v1::SignedEnvelope* out) {
    v1::ServerMessage m;
    while (stream_->Read(&m)) {
      if (m.has_instruction()) {
        *out = m.instruction();
        return true;
      }
    }
    return false;
  }

 private:
  std::unique_ptr<v1::AgentGateway::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::AgentMessage, v1::ServerMessage>> stream_;
  std::vector<v1::SignedEnvelope> instructions_;
  bool open_ = false;
  bool finished_ = false;
};

}  // namespace

TEST_CASE("attack 7: one live stream per agent across replicas; block closes it; streams capped",
          "[e2e][attack][streams]") {
  auto& c = Cluster::Get();
  Enrolled a = Enroll();
  const std::string& id = a.reg.agent_id();
  const std::string& token = a.reg.credentials().access_token();
  int port = 0;
  auto second = c.StartGateway({}, &port);
  std::string other = "localhost:" + std::to_string(port);

  // Same replica: the newer stream replaces the older, which is told why.
  auto first = std::make_unique<HeldStream>(c.gateway_address(), id, token, a.machine);
  REQUIRE(first->open());
  auto newer = std::make_unique<HeldStream>(c.gateway_address(), id, token, a.machine);
  REQUIRE(newer->open());
  grpc::Status replaced = first->Ended();
  CHECK(replaced.error_code() == grpc::StatusCode::ABORTED);
  CHECK_THAT(replaced.error_message(), Catch::Contains("replaced by a newer stream"));

  // Another replica: its stream replaces the one here (fleet-wide, through the event feed).
  auto remote = std::make_unique<HeldStream>(other, id, token, a.machine);
  REQUIRE(remote->open());
  CHECK(newer->Ended().error_code() == grpc::StatusCode::ABORTED);

  // Warnings reach the live stream, not an orphan.
  v1::WarnAgentRequest warn;
  warn.set_id(id);
  warn.set_message("attack 7");
  {
    grpc::ClientContext ctx;
    Cluster::Authorize(ctx, c.AdminToken());
    v1::Agent out;
    REQUIRE(c.Operator()->WarnAgent(&ctx, warn, &out).ok());
  }
  v1::SignedEnvelope env;
  CHECK(remote->NextInstruction(&env));

  // Blocking closes it.
  {
    grpc::ClientContext ctx;
    Cluster::Authorize(ctx, c.AdminToken());
    v1::BlockAgentRequest block;
    block.set_id(id);
    block.set_reason("attack 7");
    v1::Agent out;
    REQUIRE(c.Operator()->BlockAgent(&ctx, block, &out).ok());
  }
  CHECK(remote->Ended().error_code() == grpc::StatusCode::PERMISSION_DENIED);

  // A flood of streams for one agent (before any hello) is capped per replica.
  Enrolled b = Enroll();
  auto stub = c.AgentGateway();
  std::vector<std::unique_ptr<grpc::ClientContext>> ctxs;
  std::vector<std::unique_ptr<grpc::ClientReaderWriter<v1::AgentMessage, v1::ServerMessage>>> held;
  for (int i = 0; i < 4; ++i) {
    ctxs.push_back(std::make_unique<grpc::ClientContext>());
    Cluster::Authorize(*ctxs.back(), b.reg.credentials().access_token());
    ctxs.back()->AddMetadata("x-machine-id", b.machine);
    held.push_back(stub->Connect(ctxs.back().get()));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the four are open
  grpc::ClientContext extra;
  extra.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  Cluster::Authorize(extra, b.reg.credentials().access_token());
  extra.AddMetadata("x-machine-id", b.machine);
  auto fifth = stub->Connect(&extra);
  v1::ServerMessage m;
  CHECK_FALSE(fifth->Read(&m));
  grpc::Status capped = fifth->Finish();
  CHECK(capped.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  for (auto& ctx : ctxs) ctx->TryCancel();
  for (auto& h : held) (void)h->Finish();
  // Once they are gone, the agent connects normally.
  bool back = false;
  for (int i = 0; i < 50 && !back; ++i) {
    back =
        OpenStream(b.reg.agent_id(), b.reg.credentials().access_token(), b.machine, "0.2.0").ok();
    if (!back) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(back);
}

TEST_CASE(
    "attack 8: no version, a malformed one, or a changed one mid-stream is refused; "
    "operators can undo a bogus highest version",
    "[e2e][attack][version]") {
  auto& c = Cluster::Get();
  Enrolled a = Enroll();
  const std::string& id = a.reg.agent_id();
  const std::string& token = a.reg.credentials().access_token();
  for (const char* bad : {"", "latest", "1.2", "1.2.3.4"}) {
    INFO(bad);
    grpc::Status s = OpenStream(id, token, a.machine, bad);
    CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK_THAT(s.error_message(), Catch::Contains("MAJOR.MINOR.PATCH"));
  }
  // A check-in claiming another version than the hello's ends the stream, recording nothing.
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    Cluster::Authorize(ctx, token);
    ctx.AddMetadata("x-machine-id", a.machine);
    auto stream = c.AgentGateway()->Connect(&ctx);
    REQUIRE(stream->Write(HelloMessage(id, a.machine, "0.2.0")));
    v1::ServerMessage m;
    REQUIRE(stream->Read(&m));
    v1::AgentMessage check_in;
    check_in.set_seq(2);
    check_in.mutable_check_in()->set_version("99999.0.0");
    stream->Write(check_in);
    while (stream->Read(&m)) {
    }
    grpc::Status s = stream->Finish();
    CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK_THAT(s.error_message(), Catch::Contains("differs from the hello"));
  }
  CHECK(QueryColumn("SELECT highest_version FROM agents.agents WHERE id = $1", {id})[0] == "0.2.0");

  // A hello with a bogus huge version is a valid version: it raises the highest seen, and
  // the real one is then a downgrade...
  REQUIRE(OpenStream(id, token, a.machine, "99999.0.0").ok());
  CHECK(OpenStream(id, token, a.machine, "0.2.0").error_code() ==
        grpc::StatusCode::FAILED_PRECONDITION);
  // ...until an operator resets it, which is recorded.
  v1::ResetAgentVersionRequest reset;
  reset.set_id(id);
  reset.set_version("0.2.0");
  auto call = [&](const std::string& as, const v1::ResetAgentVersionRequest& r) {
    grpc::ClientContext ctx;
    Cluster::Authorize(ctx, as);
    v1::Agent out;
    return c.Operator()->ResetAgentVersion(&ctx, r, &out);
  };
  CHECK(call(c.AdminToken(), reset).error_code() == grpc::StatusCode::INVALID_ARGUMENT);  // reason
  reset.set_reason("bogus version reported during the red-team exercise");
  std::string viewer = c.NewUser("resetv-" + HexEncode(RandomBytes(3)), v1::VIEWER);
  CHECK(call(viewer, reset).error_code() == grpc::StatusCode::PERMISSION_DENIED);
  v1::ResetAgentVersionRequest low = reset;
  low.set_version("0.0.1");
  CHECK(call(c.AdminToken(), low).error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  REQUIRE(call(c.AdminToken(), reset).ok());
  CHECK(OpenStream(id, token, a.machine, "0.2.0").ok());
  CHECK(Count("SELECT count(*) FROM audit.security_events WHERE type = 'AGENT_VERSION_RESET' "
              "AND detail LIKE $1",
              {"%" + id + "%99999.0.0%"}) == 1);
}

TEST_CASE(
    "attack 9: oversized or malformed registration input is refused before anything is "
    "stored",
    "[e2e][attack][input]") {
  auto& c = Cluster::Get();
  std::string secret = c.NewRegistrationToken(1);
  int64_t seats = Count("SELECT count(*) FROM auth.registration_seats", {});
  auto reg = [&](const std::string& machine, const std::string& hostname,
                 const std::string& version) {
    grpc::ClientContext ctx;
    v1::RegisterRequest req;
    req.set_registration_token(secret);
    req.set_machine_id(machine);
    req.set_hostname(hostname);
    req.set_version(version);
    req.set_platform("Linux-x86_64");
    v1::RegisterResponse resp;
    return c.AgentGateway()->Register(&ctx, req, &resp);
  };
  std::string good = RandomMachineId();
  struct Case {
    const char* what;
    grpc::Status status;
  };
  std::vector<Case> cases = {
      {"3 MiB machine_id", reg(std::string(3 << 20, 'a'), "host", "0.2.0")},
      {"machine_id not hex", reg(std::string(64, 'z'), "host", "0.2.0")},
      {"newline in hostname", reg(good, "host\nFAKE LOG LINE", "0.2.0")},
      {"NUL in hostname", reg(good, std::string("host\0evil", 9), "0.2.0")},
      {"escape in hostname", reg(good, "host\x1b[31m", "0.2.0")},
      {"huge hostname", reg(good, std::string(300, 'h'), "0.2.0")},
      {"no version", reg(good, "host", "")},
  };
  for (const auto& k : cases) {
    INFO(k.what << ": " << k.status.error_message());
    CHECK(k.status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  }
  // Nothing was written: no seat consumed, the token still enrolls the real machine.
  CHECK(Count("SELECT count(*) FROM auth.registration_seats", {}) == seats);
  CHECK(reg(good, "real-host", "0.2.0").ok());
}

TEST_CASE("attack 11: package names that are not plain file names are refused at publication",
          "[e2e][attack][input]") {
  auto& c = Cluster::Get();
  auto publish = [&](const std::string& name, const std::string& channel) {
    grpc::ClientContext ctx;
    Cluster::Authorize(ctx, c.AdminToken());
    v1::Update out;
    auto writer = c.Operator()->PublishUpdate(&ctx, &out);
    v1::PublishUpdateChunk h;
    h.mutable_header()->set_name(name);
    h.mutable_header()->set_version("1.0.0");
    h.mutable_header()->set_platform("Linux-x86_64");
    h.mutable_header()->set_channel(channel);
    h.mutable_header()->set_kind(v1::PACKAGE);
    h.mutable_header()->set_size(2);
    writer->Write(h);
    v1::PublishUpdateChunk d;
    d.set_data("hi");
    writer->Write(d);
    writer->WritesDone();
    return writer->Finish();
  };
  int64_t before = Count("SELECT count(*) FROM updates.packages", {});
  for (const char* bad : {".", "..", ".hidden", "-rf", "a/b", "../etc"}) {
    INFO(bad);
    grpc::Status s = publish(bad, "stable");
    CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK_THAT(s.error_message(), Catch::Contains("starting with a letter or digit"));
  }
  CHECK(publish("tool", "..").error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(Count("SELECT count(*) FROM updates.packages", {}) == before);
  CHECK(publish("safe-name.v2", "attack11-" + HexEncode(RandomBytes(3))).ok());
}

namespace {

// What `openssl s_client -<version>` negotiated with 127.0.0.1:port ("(NONE)" if refused).
std::string NegotiatedCipher(int port, const std::string& version) {
  std::string out =
      RunCommand("echo | timeout 10 openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
                 " -" + version)
          .first;
  size_t at = out.find("Cipher is ");
  if (at == std::string::npos) return "no handshake line: " + out.substr(0, 200);
  return out.substr(at + 10, out.find('\n', at) - at - 10);
}

}  // namespace

TEST_CASE("attack 14: the public port refuses TLS 1.2 and speaks TLS 1.3", "[e2e][attack][tls]") {
  int port = 0;
  auto gateway = Cluster::Get().StartGateway({}, &port);
  CHECK(NegotiatedCipher(port, "tls1_2") == "(NONE)");
  CHECK_THAT(NegotiatedCipher(port, "tls1_3"), Catch::StartsWith("TLS_"));
  // The control: the same gateway told to allow 1.2 does negotiate it.
  int legacy_port = 0;
  auto legacy =
      Cluster::Get().StartGateway({{"REDFLAG_PUBLIC_TLS_MIN_VERSION", "1.2"}}, &legacy_port);
  CHECK(NegotiatedCipher(legacy_port, "tls1_2") != "(NONE)");
  // And the TLS 1.3-only gateway still serves real clients (gRPC over its internal mTLS too).
  auto ops = v1::OperatorService::NewStub(
      MakeChannel("localhost:" + std::to_string(port),
                  TlsChannelCredentials(ReadFile(PkiFile("public-ca.crt")))));
  grpc::ClientContext ctx;
  Cluster::Authorize(ctx, Cluster::Get().AdminToken());
  v1::ListAgentsResponse r;
  CHECK(ops->ListAgents(&ctx, {}, &r).ok());
}

namespace {

// Runs `sql` on the fixture database as its (superuser) owner, append-only trigger disabled:
// what an attacker with database superuser rights can do.
void AsSuperuser(const std::string& sql) {
  static std::unique_ptr<PgPool> pool = TestPool(1);
  absl::Status s = pool->InTransaction([&](PgConnection& c) {
    return c.ExecScript(
        "ALTER TABLE audit.security_events DISABLE TRIGGER security_events_append_only; " + sql +
        "; ALTER TABLE audit.security_events ENABLE TRIGGER security_events_append_only");
  });
  REQUIRE(s.ToString() == "OK");
}

v1::AuditVerification VerifyAudit(const std::string& token, grpc::Status* status = nullptr) {
  grpc::ClientContext ctx;
  Cluster::Authorize(ctx, token);
  v1::AuditVerification out;
  grpc::Status s = Cluster::Get().Operator()->VerifyAuditTrail(&ctx, {}, &out);
  if (status != nullptr) *status = s;
  return out;
}

// Output and exit code of `redflagctl verify-audit` against the shared gateway.
std::pair<std::string, int> RedflagctlVerify() {
  return RunCommand("REDFLAG_TOKEN=" + Cluster::Get().AdminToken() + " " +
                    BinaryPath("tools/redflagctl") +
                    " --server=" + Cluster::Get().gateway_address() +
                    " --ca_file=" + PkiFile("public-ca.crt") + " --json verify-audit");
}

}  // namespace

TEST_CASE(
    "attack 12: a superuser's edit, deletion or re-sealed edit in the audit trail is "
    "found, named and alerted on",
    "[e2e][attack][audit]") {
  auto& c = Cluster::Get();
  for (int i = 0; i < 12; ++i) {  // some events to tamper with (failed logins)
    grpc::ClientContext ctx;
    v1::LoginRequest req;
    req.set_username("audit-probe-" + HexEncode(RandomBytes(4)));
    req.set_password("wrong-password");
    v1::TokenPair out;
    (void)c.Operator()->Login(&ctx, req, &out);
  }
  grpc::Status s;
  v1::AuditVerification v = VerifyAudit(c.AdminToken(), &s);
  REQUIRE(s.ok());
  CHECK(v.intact());
  CHECK(v.checked() > 10);
  std::string viewer = c.NewUser("audit-" + HexEncode(RandomBytes(3)), v1::VIEWER);
  VerifyAudit(viewer, &s);
  CHECK(s.error_code() == grpc::StatusCode::PERMISSION_DENIED);

  // Edit an event in the middle of the chain.
  std::string victim =
      QueryColumn("SELECT id FROM audit.security_events ORDER BY id DESC OFFSET 5 LIMIT 1", {})[0];
  std::string actor =
      QueryColumn("SELECT actor FROM audit.security_events WHERE id = $1::bigint", {victim})[0];
  AsSuperuser("UPDATE audit.security_events SET actor = 'nobody' WHERE id = " + victim);
  v = VerifyAudit(c.AdminToken());
  CHECK_FALSE(v.intact());
  CHECK(std::to_string(v.first_bad_id()) == victim);
  CHECK_THAT(v.reason(), Catch::Contains("edited"));
  auto [out, rc] = RedflagctlVerify();
  CHECK(rc == 3);
  CHECK_THAT(out, Catch::Contains("\"firstBadId\": \"" + victim + "\""));
  CHECK_THAT(HttpGet(c.metrics_port("auth"), "/metrics"),
             Catch::Contains("redflag_audit_chain_verified 0"));
  // Put it back: intact again, and the gauge recovers.
  AsSuperuser("UPDATE audit.security_events SET actor = " +
              std::string(QueryColumn("SELECT quote_literal($1)", {actor})[0]) +
              " WHERE id = " + victim);
  CHECK(VerifyAudit(c.AdminToken()).intact());
  CHECK_THAT(HttpGet(c.metrics_port("auth"), "/metrics"),
             Catch::Contains("redflag_audit_chain_verified 1"));

  // Delete one: the next event names the gap.
  std::string next =
      QueryColumn("SELECT min(id) FROM audit.security_events WHERE id > $1::bigint", {victim})[0];
  AsSuperuser("CREATE TEMP TABLE saved AS SELECT * FROM audit.security_events WHERE id = " +
              victim + "; DELETE FROM audit.security_events WHERE id = " + victim);
  v = VerifyAudit(c.AdminToken());
  CHECK_FALSE(v.intact());
  CHECK(std::to_string(v.first_bad_id()) == next);
  CHECK_THAT(v.reason(), Catch::Contains("removed"));
  // Restored (the same session kept the copy): intact again.
  AsSuperuser("INSERT INTO audit.security_events SELECT * FROM saved; DROP TABLE saved");
  CHECK(VerifyAudit(c.AdminToken()).intact());

  // Edit and re-seal the rest of the chain, as a superuser could with an unkeyed chain:
  // every later hash recomputed (SHA-256 over the same length-prefixed fields). Without the
  // audit key the seal cannot be forged, so the edited event is still named.
  struct Row {
    std::string id, prev, hash;
    std::vector<std::string> fields;  // type, service, actor, source, detail, at_micros
  };
  std::vector<Row> rows;
  auto pool = TestPool(1);
  REQUIRE(
      pool->WithConnection([&](PgConnection& conn) -> absl::Status {
            static constexpr Statement kRows{
                "attack_audit_rows",
                "SELECT id::text, type, service, actor, source, detail, at_micros::text, "
                "prev_hash, hash FROM audit.security_events WHERE id >= $1::bigint ORDER BY id"};
            absl::StatusOr<PgResult> r = conn.Exec(kRows, {victim});
            if (!r.ok()) return r.status();
            for (int i = 0; i < r->Rows(); ++i) {
              rows.push_back({r->Text(i, 0),
                              r->Text(i, 7),
                              r->Text(i, 8),
                              {r->Text(i, 1), r->Text(i, 2), r->Text(i, 3), r->Text(i, 4),
                               r->Text(i, 5), r->Text(i, 6)}});
            }
            return absl::OkStatus();
          })
          .ok());
  REQUIRE(rows.size() >= 2);
  auto quote = [](const std::string& v) { return QueryColumn("SELECT quote_literal($1)", {v})[0]; };
  std::string reseal, restore;
  std::string prev = rows[0].prev;
  for (size_t i = 0; i < rows.size(); ++i) {
    std::vector<std::string> f = rows[i].fields;
    if (i == 0) f[2] = "nobody";
    std::string input = std::to_string(prev.size()) + ":" + prev;
    for (const auto& x : f) input += std::to_string(x.size()) + ":" + x;
    std::string h = Sha256Hex(input);
    reseal += "UPDATE audit.security_events SET actor = " + quote(f[2]) + ", prev_hash = '" + prev +
              "', hash = '" + h + "' WHERE id = " + rows[i].id + "; ";
    restore += "UPDATE audit.security_events SET actor = " + quote(rows[i].fields[2]) +
               ", prev_hash = '" + rows[i].prev + "', hash = '" + rows[i].hash +
               "' WHERE id = " + rows[i].id + "; ";
    prev = h;
  }
  AsSuperuser(reseal + "SELECT 1");
  v = VerifyAudit(c.AdminToken());
  CHECK_FALSE(v.intact());
  CHECK(std::to_string(v.first_bad_id()) == victim);
  AsSuperuser(restore + "SELECT 1");
  CHECK(VerifyAudit(c.AdminToken()).intact());
}

TEST_CASE("attack 12: a NUL in a login name is refused, and NULs elsewhere are sealed as stored",
          "[e2e][attack][audit]") {
  grpc::ClientContext ctx;
  v1::LoginRequest req;
  req.set_username(std::string("adm\0in", 6));
  req.set_password("whatever-whatever");
  v1::TokenPair out;
  grpc::Status s = Cluster::Get().Operator()->Login(&ctx, req, &out);
  CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  // A NUL reaching the writer by another path is stored spelled out, and the chain holds.
  auto pool = TestPool(1);
  SecurityEventWriter writer(*pool, "attack-test", TestVar("REDFLAG_AUDIT_KEY"));
  REQUIRE(writer.Record({"TEST_NUL", std::string("a\0b", 3), "test", "{}"}).ok());
  CHECK(QueryColumn("SELECT actor FROM audit.security_events WHERE type = 'TEST_NUL' "
                    "ORDER BY id DESC LIMIT 1",
                    {})[0] == "a\\u0000b");
  CHECK(VerifyAudit(Cluster::Get().AdminToken()).intact());
}

TEST_CASE("services run as their own least-privilege roles and refuse the owner's",
          "[e2e][attack][roles]") {
  Cluster& c = Cluster::Get();
  (void)c.AdminToken();  // the cluster is up and serving
  // Every service session of the running cluster is its own role: none is the owner or a
  // superuser (redflag-migrate alone used the owner, and has exited).
  auto owner = TestPool(1);
  static constexpr Statement kSessions{
      "test_service_roles",
      "SELECT string_agg(DISTINCT application_name || '=' || usename::text, ',' ORDER BY "
      "application_name || '=' || usename::text) FROM pg_stat_activity WHERE datname = "
      "current_database() AND application_name LIKE 'redflag-%'"};
  std::string roles;
  REQUIRE(owner
              ->WithConnection([&](PgConnection& conn) -> absl::Status {
                REDFLAG_ASSIGN_OR_RETURN(PgResult r, conn.Exec(kSessions));
                roles = r.Text(0, 0);
                return absl::OkStatus();
              })
              .ok());
  // Each service's pool (application name = the service) and its LISTEN connection.
  CHECK(roles ==
        "redflag-agents=redflag_agents,redflag-auth=redflag_auth,redflag-listen=redflag_agents,"
        "redflag-listen=redflag_auth,redflag-listen=redflag_updates,"
        "redflag-updates=redflag_updates");

  // A service pointed at the owner's credentials (which could rewrite the audit trail)
  // refuses to start, and says why.
  std::map<std::string, std::string> env = Cluster::ServiceEnv("auth");
  std::string cmd;
  for (const auto& [k, v] : env) {
    if (k.rfind("REDFLAG_DB_", 0) != 0) cmd += k + "='" + v + "' ";
  }
  cmd += "REDFLAG_DB_USER=redflag_owner REDFLAG_DB_PASSWORD='" +
         TestVar("REDFLAG_DB_OWNER_PASSWORD") + "' " + BinaryPath("services/auth/redflag-auth") +
         " --listen=127.0.0.1:" + std::to_string(FreePort()) +
         " --metrics=127.0.0.1:" + std::to_string(FreePort());
  auto [out, rc] = RunCommand(cmd);
  CHECK(rc == 1);
  CHECK_THAT(out, Catch::Contains("redflag_owner may change audit.security_events"));
}
