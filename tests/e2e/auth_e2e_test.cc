// Auth attack tests through the gateway: refresh rotation and reuse detection, the agents'
// one-time grace, logout, lockout, roles per operator RPC group, token secrecy, rate limits
// and the bad-token lockout, and what each failure leaves in metrics and the audit trail.
#include <catch2/catch.hpp>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include "common/actor.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "common/status.h"
#include "tests/support/cluster.h"
#include "tests/support/rate_limits.h"
#include "tests/support/test_env.h"

using namespace redflag;
using namespace redflag::testing;

namespace {

grpc::Status Refresh(const std::string& token, v1::TokenPair* out) {
  grpc::ClientContext ctx;
  v1::RefreshRequest req;
  req.set_refresh_token(token);
  return Cluster::Get().Operator()->Refresh(&ctx, req, out);
}

grpc::Status Login(const std::string& user, const std::string& password, v1::TokenPair* out) {
  grpc::ClientContext ctx;
  v1::LoginRequest req;
  req.set_username(user);
  req.set_password(password);
  return Cluster::Get().Operator()->Login(&ctx, req, out);
}

v1::TokenPair AdminSession() {
  v1::TokenPair pair;
  REQUIRE(Login("admin", TestVar("REDFLAG_ADMIN_PASSWORD"), &pair).ok());
  return pair;
}

int64_t EventCount(const std::string& type, const std::string& actor) {
  return std::stoll(
      QueryColumn("SELECT count(*) FROM audit.security_events WHERE type = $1 AND actor = $2",
                  {type, actor})[0]);
}

std::string NewUserName(const std::string& prefix) {
  return prefix + "-" + HexEncode(RandomBytes(4));
}

}  // namespace

TEST_CASE("refresh rotates the token; a reused refresh token revokes the whole session",
          "[e2e][auth][refresh]") {
  REQUIRE(InitCrypto().ok());
  v1::TokenPair first = AdminSession();
  v1::TokenPair second, third, replay;
  REQUIRE(Refresh(first.refresh_token(), &second).ok());
  CHECK(second.refresh_token() != first.refresh_token());
  CHECK_FALSE(second.access_token().empty());
  int64_t reuse_events = EventCount("REFRESH_TOKEN_REUSE", "admin");

  grpc::Status reused = Refresh(first.refresh_token(), &replay);
  CHECK(reused.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK_THAT(reused.error_message(), Catch::Contains("already used"));
  CHECK(EventCount("REFRESH_TOKEN_REUSE", "admin") == reuse_events + 1);
  // The legitimate holder's newer token died with the family.
  grpc::Status after = Refresh(second.refresh_token(), &third);
  CHECK(after.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK_THAT(after.error_message(), Catch::Contains("revoked"));
}

TEST_CASE("logout revokes the session's refresh token", "[e2e][auth][refresh]") {
  v1::TokenPair pair = AdminSession();
  grpc::ClientContext ctx;
  Cluster::Authorize(ctx, pair.access_token());
  v1::LogoutRequest req;
  req.set_refresh_token(pair.refresh_token());
  v1::LogoutResponse resp;
  REQUIRE(Cluster::Get().Operator()->Logout(&ctx, req, &resp).ok());
  v1::TokenPair again;
  CHECK(Refresh(pair.refresh_token(), &again).error_code() == grpc::StatusCode::UNAUTHENTICATED);
}

TEST_CASE("an agent may present its previous refresh token once, within the grace period",
          "[e2e][auth][refresh]") {
  v1::RegisterResponse reg;
  std::string machine = RandomMachineId();
  REQUIRE(RegisterAgent(Cluster::Get().NewRegistrationToken(1), machine, "0.2.0", &reg).ok());
  const std::string old_token = reg.credentials().refresh_token();
  v1::TokenPair lost, recovered, replay, after;
  REQUIRE(RefreshAgent(reg.agent_id(), machine, old_token, &lost).ok());
  // The agent crashed before saving `lost`: its old token still works, once.
  grpc::Status grace = RefreshAgent(reg.agent_id(), machine, old_token, &recovered);
  REQUIRE(grace.ok());
  CHECK(recovered.refresh_token() != lost.refresh_token());
  CHECK(EventCount("REFRESH_GRACE_USED", reg.agent_id()) == 1);
  // The unsaved token was retired by the grace use.
  CHECK(RefreshAgent(reg.agent_id(), machine, lost.refresh_token(), &replay).error_code() ==
        grpc::StatusCode::UNAUTHENTICATED);
  // Any further reuse is theft: the family is revoked, the recovered token too.
  CHECK(RefreshAgent(reg.agent_id(), machine, recovered.refresh_token(), &after).error_code() ==
        grpc::StatusCode::UNAUTHENTICATED);
}

TEST_CASE("operator refresh tokens get no grace", "[e2e][auth][refresh]") {
  v1::TokenPair first = AdminSession(), second, replay;
  REQUIRE(Refresh(first.refresh_token(), &second).ok());
  CHECK(Refresh(first.refresh_token(), &replay).error_code() == grpc::StatusCode::UNAUTHENTICATED);
}

TEST_CASE(
    "repeated failed logins throttle the account from that source without revealing "
    "whether it exists",
    "[e2e][auth][lockout]") {
  REQUIRE(InitCrypto().ok());
  auto& c = Cluster::Get();
  std::string user = NewUserName("locky");
  std::string password = "correct-horse-" + HexEncode(RandomBytes(4));
  {
    v1::CreateUserRequest req;
    req.set_username(user);
    req.set_password(password);
    req.set_role(v1::VIEWER);
    v1::User created;
    grpc::ClientContext ctx;
    Cluster::Authorize(ctx, c.AdminToken());
    REQUIRE(c.Operator()->CreateUser(&ctx, req, &created).ok());
  }
  std::string ghost = NewUserName("ghost");
  v1::TokenPair pair;
  for (int i = 0; i < 3; ++i) {  // the shared cluster's threshold is 3
    CHECK(Login(user, "wrong-password-" + std::to_string(i), &pair).error_code() ==
          grpc::StatusCode::UNAUTHENTICATED);
    CHECK(Login(ghost, "wrong-password-" + std::to_string(i), &pair).error_code() ==
          grpc::StatusCode::UNAUTHENTICATED);
  }
  grpc::Status locked = Login(user, password, &pair);  // even the right password
  grpc::Status ghost_locked = Login(ghost, password, &pair);
  CHECK(locked.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(ghost_locked.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(locked.error_message().substr(0, 30) == ghost_locked.error_message().substr(0, 30));
  std::optional<absl::Duration> delay = RetryDelayOf(locked);
  REQUIRE(delay.has_value());
  CHECK(*delay <= absl::Seconds(2));
  CHECK(EventCount("LOGIN_THROTTLED", user) == 1);

  std::this_thread::sleep_for(std::chrono::milliseconds(2200));  // first delay is 2 s
  CHECK(Login(user, password, &pair).ok());
}

TEST_CASE("failed logins from one source throttle that source", "[e2e][auth][lockout]") {
  // Straight to auth with the gateway's certificate, naming a source of our own, so the
  // shared cluster's address (127.0.0.1) is not locked for the other tests.
  REQUIRE(InitCrypto().ok());
  TlsMaterial gw{ReadFile(PkiFile("internal-ca.crt")), ReadFile(PkiFile("gateway.crt")),
                 ReadFile(PkiFile("gateway.key"))};
  std::string source = "ipv4:198.51.100." + std::to_string(randombytes_uniform(250) + 1) + ":4242";
  // A dedicated auth process (same database) with a low per-source threshold.
  int port = FreePort();
  std::map<std::string, std::string> env = Cluster::ServiceEnv("auth");
  env["REDFLAG_LOGIN_SOURCE_THRESHOLD"] = "4";
  env["REDFLAG_LOGIN_THROTTLE_THRESHOLD"] = "100";
  env["REDFLAG_LOGIN_THROTTLE_FIRST_SECONDS"] = "60";
  Process dedicated(
      "auth-lockout",
      {BinaryPath("services/auth/redflag-auth"), "--listen=127.0.0.1:" + std::to_string(port),
       "--metrics=127.0.0.1:" + std::to_string(FreePort())},
      env);
  REQUIRE(WaitUntilListening(dedicated, port) == "");
  auto stub = v1::AuthService::NewStub(
      MakeChannel("localhost:" + std::to_string(port), MutualTlsChannelCredentials(gw)));
  auto login = [&](const std::string& user, const std::string& pw) {
    grpc::ClientContext ctx;
    AttachActor(ctx, Actor{"", "", source});
    v1::LoginRequest req;
    req.set_username(user);
    req.set_password(pw);
    v1::TokenPair out;
    return stub->Login(&ctx, req, &out);
  };
  for (int i = 0; i < 4; ++i) {
    CHECK(login(NewUserName("spray"), "guess").error_code() == grpc::StatusCode::UNAUTHENTICATED);
  }
  // Password spraying across usernames from one source: the source is now locked, even for
  // the real admin password.
  CHECK(login("admin", TestVar("REDFLAG_ADMIN_PASSWORD")).error_code() ==
        grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(QueryColumn("SELECT count(*) FROM audit.security_events WHERE type = 'LOGIN_THROTTLED' "
                    "AND detail LIKE '%\"scope\":\"source\"%' AND source = $1",
                    {source})[0] == "1");
}

TEST_CASE("each operator RPC group enforces its role", "[e2e][auth][roles]") {
  REQUIRE(InitCrypto().ok());
  auto& c = Cluster::Get();
  std::string viewer = c.NewUser(NewUserName("viewer"), v1::VIEWER);
  std::string op = c.NewUser(NewUserName("operator"), v1::OPERATOR);
  v1::RegisterResponse reg;
  REQUIRE(RegisterAgent(c.NewRegistrationToken(1), RandomMachineId(), "0.2.0", &reg).ok());

  auto list_agents = [&](const std::string& t) {
    grpc::ClientContext ctx;
    Cluster::Authorize(ctx, t);
    v1::ListAgentsResponse r;
    return c.Operator()->ListAgents(&ctx, {}, &r).error_code();
  };
  auto list_tokens = [&](const std::string& t) {
    grpc::ClientContext ctx;
    Cluster::Authorize(ctx, t);
    v1::ListRegistrationTokensResponse r;
    return c.Operator()->ListRegistrationTokens(&ctx, {}, &r).error_code();
  };
  auto create_token = [&](const std::string& t) {
    grpc::ClientContext ctx;
    Cluster::Authorize(ctx, t);
    v1::CreateRegistrationTokenRequest req;
    req.set_seats(1);
    v1::CreateRegistrationTokenResponse r;
    return c.Operator()->CreateRegistrationToken(&ctx, req, &r).error_code();
  };
  auto block = [&](const std::string& t) {
    grpc::ClientContext ctx;
    Cluster::Authorize(ctx, t);
    v1::BlockAgentRequest req;
    req.set_id(reg.agent_id());
    req.set_reason("role test");
    v1::Agent r;
    return c.Operator()->BlockAgent(&ctx, req, &r).error_code();
  };
  auto create_user = [&](const std::string& t) {
    grpc::ClientContext ctx;
    Cluster::Authorize(ctx, t);
    v1::CreateUserRequest req;
    req.set_username(NewUserName("made"));
    req.set_password("long-enough-password");
    req.set_role(v1::VIEWER);
    v1::User r;
    return c.Operator()->CreateUser(&ctx, req, &r).error_code();
  };
  auto list_users = [&](const std::string& t) {
    grpc::ClientContext ctx;
    Cluster::Authorize(ctx, t);
    v1::ListUsersResponse r;
    return c.Operator()->ListUsers(&ctx, {}, &r).error_code();
  };
  using grpc::StatusCode;
  // viewer: reads only
  CHECK(list_agents(viewer) == StatusCode::OK);
  CHECK(list_tokens(viewer) == StatusCode::OK);
  CHECK(create_token(viewer) == StatusCode::PERMISSION_DENIED);
  CHECK(block(viewer) == StatusCode::PERMISSION_DENIED);
  CHECK(create_user(viewer) == StatusCode::PERMISSION_DENIED);
  CHECK(list_users(viewer) == StatusCode::PERMISSION_DENIED);
  // operator: agents and tokens, not accounts
  CHECK(create_token(op) == StatusCode::OK);
  CHECK(block(op) == StatusCode::OK);
  CHECK(create_user(op) == StatusCode::PERMISSION_DENIED);
  CHECK(list_users(op) == StatusCode::PERMISSION_DENIED);
  // admin: everything
  CHECK(create_user(c.AdminToken()) == StatusCode::OK);
  CHECK(list_users(c.AdminToken()) == StatusCode::OK);
}

TEST_CASE("registration tokens: secret shown once, only a prefix listed, revocation and limits",
          "[e2e][auth][tokens]") {
  auto& c = Cluster::Get();
  v1::CreateRegistrationTokenResponse created;
  {
    grpc::ClientContext ctx;
    Cluster::Authorize(ctx, c.AdminToken());
    v1::CreateRegistrationTokenRequest req;
    req.set_seats(3);
    req.set_label("secrecy");
    REQUIRE(c.Operator()->CreateRegistrationToken(&ctx, req, &created).ok());
  }
  CHECK(created.secret().size() > 40);
  CHECK(created.token().prefix() == created.secret().substr(0, 12));
  // Every page of the listing: the token is there, its secret nowhere.
  v1::ListRegistrationTokensRequest list_req;
  list_req.set_page_size(2);  // several pages, so paging is exercised too
  bool found = false;
  int pages = 0;
  do {
    grpc::ClientContext ctx;
    Cluster::Authorize(ctx, c.AdminToken());
    v1::ListRegistrationTokensResponse listed;
    REQUIRE(c.Operator()->ListRegistrationTokens(&ctx, list_req, &listed).ok());
    ++pages;
    CHECK(listed.tokens_size() <= 2);
    CHECK(listed.SerializeAsString().find(created.secret()) == std::string::npos);
    for (const auto& t : listed.tokens()) found = found || t.id() == created.token().id();
    list_req.set_page_token(listed.next_page_token());
  } while (!list_req.page_token().empty() && pages < 10000);
  CHECK(found);
  // The database holds only a hash.
  CHECK(QueryColumn("SELECT count(*) FROM auth.registration_tokens WHERE token_hash = $1",
                    {created.secret()})[0] == "0");
  {
    grpc::ClientContext ctx;
    Cluster::Authorize(ctx, c.AdminToken());
    v1::RevokeRegistrationTokenRequest req;
    req.set_id(created.token().id());
    v1::RegistrationToken revoked;
    REQUIRE(c.Operator()->RevokeRegistrationToken(&ctx, req, &revoked).ok());
    CHECK(revoked.revoked());
  }
  v1::RegisterResponse reg;
  grpc::Status s = RegisterAgent(created.secret(), RandomMachineId(), "0.2.0", &reg);
  CHECK(s.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK_THAT(s.error_message(), Catch::Contains("revoked"));
  s = RegisterAgent("rf_reg_made-up", RandomMachineId(), "0.2.0", &reg);
  CHECK(s.error_code() == grpc::StatusCode::UNAUTHENTICATED);

  grpc::ClientContext ctx;
  Cluster::Authorize(ctx, c.AdminToken());
  v1::CreateRegistrationTokenRequest too_many;
  too_many.set_seats(51);  // REDFLAG_MAX_SEATS defaults to 50
  v1::CreateRegistrationTokenResponse r;
  grpc::Status limit = c.Operator()->CreateRegistrationToken(&ctx, too_many, &r);
  CHECK(limit.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(limit.error_message(), Catch::Contains("REDFLAG_MAX_SEATS"));
}

TEST_CASE("over the rate limit callers get RESOURCE_EXHAUSTED with a retry delay",
          "[e2e][auth][ratelimit]") {
  int port = 0, metrics = 0;
  auto gateway = Cluster::Get().StartGateway({}, &port, "127.0.0.1", &metrics);
  // Tight limits for this test (security settings: every gateway applies them).
  ScopedRateLimits tight({{"registration", "0.5:2"}, {"login", "0.5:2"}}, {metrics});
  auto channel = MakeChannel("localhost:" + std::to_string(port),
                             TlsChannelCredentials(ReadFile(PkiFile("public-ca.crt"))));
  auto agents = v1::AgentGateway::NewStub(channel);
  auto ops = v1::OperatorService::NewStub(channel);
  std::vector<grpc::Status> results;
  for (int i = 0; i < 3; ++i) {
    grpc::ClientContext ctx;
    v1::RegisterRequest req;
    req.set_registration_token("rf_reg_nonexistent");
    req.set_machine_id(RandomMachineId());
    req.set_version("0.2.0");
    v1::RegisterResponse resp;
    results.push_back(agents->Register(&ctx, req, &resp));
  }
  CHECK(results[0].error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(results[1].error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(results[2].error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  std::optional<absl::Duration> delay = RetryDelayOf(results[2]);
  REQUIRE(delay.has_value());
  CHECK(*delay > absl::ZeroDuration());
  CHECK(*delay <= absl::Seconds(2));
  // Groups are separate: logins still have their own budget.
  grpc::ClientContext ctx;
  v1::LoginRequest login;
  login.set_username("admin");
  login.set_password(TestVar("REDFLAG_ADMIN_PASSWORD"));
  v1::TokenPair pair;
  CHECK(ops->Login(&ctx, login, &pair).ok());
}

TEST_CASE("auth failures are counted by reason and written to the audit trail",
          "[e2e][auth][metrics]") {
  auto& c = Cluster::Get();
  v1::TokenPair pair;
  std::string user = "metrics-" + HexEncode(RandomBytes(3));
  REQUIRE(Login(user, "nope-nope-nope", &pair).error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK_THAT(HttpGet(c.metrics_port("auth"), "/metrics"),
             Catch::Contains("redflag_auth_failures_total{reason=\"bad_credentials\"}"));
  CHECK(EventCount("AUTH_FAILURE", user) == 1);
  grpc::ClientContext ctx;
  Cluster::Authorize(ctx, "not.a.token");
  v1::ListAgentsResponse r;
  REQUIRE(c.Operator()->ListAgents(&ctx, {}, &r).error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK_THAT(HttpGet(c.metrics_port("gateway"), "/metrics"),
             Catch::Contains("redflag_auth_failures_total{reason=\"malformed_header_encoding\"}"));
  // The gateway's refusal reaches the audit trail asynchronously.
  bool recorded = false;
  for (int i = 0; i < 50 && !recorded; ++i) {
    recorded = std::stoll(QueryColumn("SELECT count(*) FROM audit.security_events WHERE type = "
                                      "'AUTH_FAILURE' AND detail LIKE $1",
                                      {"%malformed_header_encoding%"})[0]) > 0;
    if (!recorded) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(recorded);
}

TEST_CASE("users and security events come page by page, and bad paging is refused",
          "[e2e][auth][paging]") {
  auto& c = Cluster::Get();
  std::set<std::string> made;
  for (int i = 0; i < 3; ++i) {
    v1::CreateUserRequest req;
    req.set_username(NewUserName("paged"));
    req.set_password("long-enough-password");
    req.set_role(v1::VIEWER);
    v1::User created;
    grpc::ClientContext ctx;
    Cluster::Authorize(ctx, c.AdminToken());
    REQUIRE(c.Operator()->CreateUser(&ctx, req, &created).ok());
    made.insert(created.username());
  }
  // Every user once, two per page, over as many pages as there are.
  v1::ListUsersRequest users_req;
  users_req.set_page_size(2);
  std::map<std::string, int> seen;
  int pages = 0;
  do {
    grpc::ClientContext ctx;
    Cluster::Authorize(ctx, c.AdminToken());
    v1::ListUsersResponse page;
    REQUIRE(c.Operator()->ListUsers(&ctx, users_req, &page).ok());
    ++pages;
    CHECK(page.users_size() <= 2);
    for (const auto& u : page.users()) ++seen[u.username()];
    users_req.set_page_token(page.next_page_token());
  } while (!users_req.page_token().empty() && pages < 1000);
  CHECK(pages >= 2);
  CHECK(static_cast<int64_t>(seen.size()) ==
        std::stoll(QueryColumn("SELECT count(*) FROM auth.users", {})[0]));
  for (const auto& [name, times] : seen) CHECK(times == 1);
  for (const auto& name : made) CHECK(seen.count(name) == 1);

  auto list_events = [&](const v1::ListSecurityEventsRequest& req,
                         v1::ListSecurityEventsResponse* out) {
    grpc::ClientContext ctx;
    Cluster::Authorize(ctx, c.AdminToken());
    return c.Operator()->ListSecurityEvents(&ctx, req, out);
  };
  // The creations above are USER_CREATED events: three pages of two, newest first, are the
  // newest six in the database at or below the first page's first event.
  v1::ListSecurityEventsRequest ev_req;
  ev_req.set_type("USER_CREATED");
  ev_req.set_page_size(2);
  std::vector<int64_t> ids;
  for (int p = 0; p < 3; ++p) {
    v1::ListSecurityEventsResponse page;
    REQUIRE(list_events(ev_req, &page).ok());
    CHECK(page.events_size() <= 2);
    for (const auto& e : page.events()) {
      CHECK(e.type() == "USER_CREATED");
      ids.push_back(e.id());
    }
    ev_req.set_page_token(page.next_page_token());
    if (ev_req.page_token().empty()) break;
  }
  REQUIRE(ids.size() >= 3);
  std::vector<std::string> expected = QueryColumn(
      "SELECT id FROM audit.security_events WHERE type = 'USER_CREATED' AND id <= $1 "
      "ORDER BY id DESC LIMIT 6",
      {std::to_string(ids[0])});
  REQUIRE(expected.size() == ids.size());
  for (size_t i = 0; i < ids.size(); ++i) CHECK(std::to_string(ids[i]) == expected[i]);

    // The older `limit` still works alone.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"  // the deprecated field is the test
  v1::ListSecurityEventsRequest legacy;
  legacy.set_limit(2);
  v1::ListSecurityEventsResponse two;
  REQUIRE(list_events(legacy, &two).ok());
  CHECK(two.events_size() == 2);
  CHECK_FALSE(two.next_page_token().empty());

  // Refused with a message that says what was wrong.
  struct Bad {
    std::function<void(v1::ListSecurityEventsRequest&)> set;
    std::string says;
  };
  std::vector<Bad> bad = {
      {[](auto& r) { r.set_page_size(1001); }, "page_size"},
      {[](auto& r) { r.set_limit(5000); }, "page_size"},  // was silently clamped to 1000
      {[](auto& r) { r.set_limit(5), r.set_page_size(6); }, "limit"},
      {[](auto& r) { r.set_page_token("not-a-token"); }, "page_token"},
      {[&](auto& r) { r.set_type("AUTH_FAILURE"), r.set_page_token(two.next_page_token()); },
       "same type"},
      {[](auto& r) { r.set_type("x'; DROP TABLE"); }, "type"},
  };
#pragma GCC diagnostic pop
  for (const auto& b : bad) {
    v1::ListSecurityEventsRequest r;
    b.set(r);
    v1::ListSecurityEventsResponse out;
    grpc::Status s = list_events(r, &out);
    CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK_THAT(s.error_message(), Catch::Contains(b.says));
  }
  v1::ListUsersRequest bad_users;
  bad_users.set_page_token(two.next_page_token());  // a token of another RPC
  grpc::ClientContext ctx;
  Cluster::Authorize(ctx, c.AdminToken());
  v1::ListUsersResponse none;
  grpc::Status s = c.Operator()->ListUsers(&ctx, bad_users, &none);
  CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(s.error_message(), Catch::Contains("page_token"));
}
