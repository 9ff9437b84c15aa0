// Signed update delivery on real processes: publish → push → download → verify → atomic
// install; rollback protection; revocation; two gateways; and every tampering, replay and
// downgrade attempt refused with nothing installed — against the real cluster (tampering
// at rest in PostgreSQL) and against a fake gateway (an attacker controlling the channel).
#include <sys/utsname.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/encoding.h"
#include "tests/support/cluster.h"
#include "tests/support/fake_gateway.h"
#include "tests/support/test_env.h"

using namespace redflag;
using namespace redflag::testing;

namespace {

std::string Platform() {
  struct utsname u;
  uname(&u);
  return absl::StrCat(u.sysname, "-", u.machine);
}

std::string UniqueChannel() { return "ch-" + HexEncode(RandomBytes(4)); }

std::string Bytes(size_t n) {
  std::string s = RandomBytes(n);
  return s;
}

grpc::Status Publish(const std::string& name, const std::string& version,
                     const std::string& channel, const std::string& bytes, v1::Update* out,
                     const std::string& gateway = "") {
  auto& c = Cluster::Get();
  auto stub = gateway.empty()
                  ? c.Operator()
                  : v1::OperatorService::NewStub(MakeChannel(
                        gateway, TlsChannelCredentials(ReadFile(PkiFile("public-ca.crt")))));
  grpc::ClientContext ctx;
  Cluster::Authorize(ctx, c.AdminToken());
  auto writer = stub->PublishUpdate(&ctx, out);
  v1::PublishUpdateChunk header;
  v1::PublishUpdateChunk::Header* h = header.mutable_header();
  h->set_name(name);
  h->set_version(version);
  h->set_platform(Platform());
  h->set_channel(channel);
  h->set_kind(v1::PACKAGE);
  h->set_size(static_cast<int64_t>(bytes.size()));
  writer->Write(header);
  for (size_t off = 0; off < bytes.size(); off += 100 * 1024) {
    v1::PublishUpdateChunk data;
    data.set_data(bytes.substr(off, 100 * 1024));
    if (!writer->Write(data)) break;
  }
  writer->WritesDone();
  return writer->Finish();
}

v1::ListDeliveriesResponse Deliveries(const std::string& update_id) {
  auto& c = Cluster::Get();
  grpc::ClientContext ctx;
  Cluster::Authorize(ctx, c.AdminToken());
  v1::ListDeliveriesRequest req;
  req.set_update_id(update_id);
  req.set_page_size(1000);  // the tests' updates have far fewer deliveries
  v1::ListDeliveriesResponse resp;
  REQUIRE(c.Operator()->ListDeliveries(&ctx, req, &resp).ok());
  return resp;
}

// Waits for a delivery of the update to reach `state` (as the operator sees it).
bool WaitForDeliveryState(const std::string& update_id, v1::DeliveryState state, int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 50) {
    v1::ListDeliveriesResponse resp = Deliveries(update_id);  // keep it alive for the loop
    for (const auto& d : resp.deliveries()) {
      if (d.state() == state) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

bool WaitForFile(const std::string& path, int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 20) {
    if (std::filesystem::exists(path)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

struct RunningAgent {
  std::string root;
  std::unique_ptr<Process> proc;
  std::string installed(const std::string& name) const { return root + "/state/installed/" + name; }
};

RunningAgent StartUpdatingAgent(const std::string& name, const std::string& channel,
                                const std::string& gateway = "") {
  auto& c = Cluster::Get();
  RunningAgent a;
  a.root = MakeMachineTree(name);
  a.proc = StartAgent(name, a.root, gateway.empty() ? c.gateway_address() : gateway,
                      c.NewRegistrationToken(1), {"--channel=" + channel});
  REQUIRE(WaitForLog(*a.proc, "connected;", 10000));
  return a;
}

}  // namespace

TEST_CASE("a publication reaches a connected agent, which verifies and installs it",
          "[e2e][updates]") {
  std::string channel = UniqueChannel();
  RunningAgent agent = StartUpdatingAgent("upd-live", channel);
  std::string bytes = Bytes(600 * 1024);  // three storage chunks, many stream chunks
  v1::Update u;
  grpc::Status s = Publish("tool", "1.0.0", channel, bytes, &u);
  REQUIRE(s.error_message() == "");
  absl::Time published = absl::Now();
  CHECK(u.manifest().size() == static_cast<int64_t>(bytes.size()));
  CHECK(u.manifest().sha256() == Sha256Hex(bytes));
  CHECK(u.signed_manifest().key_id() == ServerSigningKey().KeyId());

  INFO(ReadFile(agent.proc->log_path()));
  REQUIRE(WaitForFile(agent.installed("tool"), 10000));
  absl::Duration took = absl::Now() - published;
  WARN("publish → installed on the agent in " << absl::FormatDuration(took));
  CHECK(ReadFile(agent.installed("tool")) == bytes);
  CHECK(WaitForDeliveryState(u.manifest().update_id(), v1::INSTALLED, 5000));
  CHECK(Deliveries(u.manifest().update_id()).counts().at("INSTALLED") == 1);
  CHECK(WaitForLog(*agent.proc, "downloading tool 1.0.0: 614400/614400 bytes", 1000));
}

TEST_CASE("an agent that connects after the publication receives the pending offer",
          "[e2e][updates]") {
  std::string channel = UniqueChannel();
  v1::Update u;
  REQUIRE(Publish("later", "2.0.0", channel, Bytes(1000), &u).ok());
  RunningAgent agent = StartUpdatingAgent("upd-later", channel);
  CHECK(WaitForFile(agent.installed("later"), 10000));
}

TEST_CASE("versions must rise within a series, revoked versions included", "[e2e][updates]") {
  std::string channel = UniqueChannel();
  v1::Update first, again, lower, higher;
  REQUIRE(Publish("series", "1.0.0", channel, Bytes(100), &first).ok());
  auto& c = Cluster::Get();
  {
    grpc::ClientContext ctx;
    Cluster::Authorize(ctx, c.AdminToken());
    v1::RevokeUpdateRequest req;
    req.set_update_id(first.manifest().update_id());
    req.set_reason("bad build");
    v1::Update revoked;
    REQUIRE(c.Operator()->RevokeUpdate(&ctx, req, &revoked).ok());
    CHECK(revoked.revoked());
  }
  grpc::Status same = Publish("series", "1.0.0", channel, Bytes(100), &again);
  CHECK(same.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK_THAT(same.error_message(), Catch::Contains("versions must rise"));
  CHECK(Publish("series", "0.9.9", channel, Bytes(100), &lower).error_code() ==
        grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(Publish("series", "1.0.1", channel, Bytes(100), &higher).ok());
}

TEST_CASE("a publication whose bytes do not match its declared size is refused", "[e2e][updates]") {
  std::string channel = UniqueChannel();
  auto& c = Cluster::Get();
  grpc::ClientContext ctx;
  Cluster::Authorize(ctx, c.AdminToken());
  v1::Update out;
  auto writer = c.Operator()->PublishUpdate(&ctx, &out);
  v1::PublishUpdateChunk header;
  header.mutable_header()->set_name("liar");
  header.mutable_header()->set_version("1.0.0");
  header.mutable_header()->set_platform(Platform());
  header.mutable_header()->set_channel(channel);
  header.mutable_header()->set_kind(v1::PACKAGE);
  header.mutable_header()->set_size(10);
  writer->Write(header);
  v1::PublishUpdateChunk data;
  data.set_data("only five");
  writer->Write(data);
  writer->WritesDone();
  grpc::Status s = writer->Finish();
  CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(s.error_message(), Catch::Contains("declared size"));
}

TEST_CASE("tampering at rest is refused by the agent and nothing is installed",
          "[e2e][updates][tamper]") {
  std::string channel = UniqueChannel();
  std::string bytes = Bytes(5000);
  v1::Update u;
  SECTION("a flipped byte in the package") {
    REQUIRE(Publish("pkg-bytes", "1.0.0", channel, bytes, &u).ok());
    QueryColumn(
        "UPDATE updates.package_chunks SET data = set_byte(data, 100, get_byte(data, 100) # 1) "
        "WHERE update_id = $1 RETURNING 1",
        {u.manifest().update_id()});
    RunningAgent agent = StartUpdatingAgent("tamper-bytes", channel);
    INFO(ReadFile(agent.proc->log_path()));
    CHECK(WaitForDeliveryState(u.manifest().update_id(), v1::FAILED, 10000));
    CHECK(WaitForLog(*agent.proc, "update refused (checksum)", 2000));
    CHECK_FALSE(std::filesystem::exists(agent.installed("pkg-bytes")));
    CHECK_THAT(HttpGet(Cluster::Get().metrics_port("updates"), "/metrics"),
               Catch::Contains("redflag_update_failures_total{reason=\"checksum\"}"));
    CHECK(QueryColumn("SELECT count(*) FROM audit.security_events WHERE type = "
                      "'UPDATE_VERIFICATION_FAILED' AND detail LIKE $1",
                      {"%" + u.manifest().update_id() + "%"})[0] == "1");
  }
  SECTION("an edited manifest") {
    REQUIRE(Publish("pkg-manifest", "1.0.0", channel, bytes, &u).ok());
    v1::SignedEnvelope env = u.signed_manifest();
    v1::Manifest m = u.manifest();
    m.set_sha256(Sha256Hex("something else entirely"));  // the attacker's own package
    env.set_payload(m.SerializeAsString());
    QueryColumn("UPDATE updates.packages SET envelope = $2 WHERE id = $1 RETURNING 1",
                {u.manifest().update_id(), HexEncode(env.SerializeAsString())});
    RunningAgent agent = StartUpdatingAgent("tamper-manifest", channel);
    INFO(ReadFile(agent.proc->log_path()));
    CHECK(WaitForLog(*agent.proc, "update refused (signature)", 10000));
    CHECK_FALSE(std::filesystem::exists(agent.installed("pkg-manifest")));
  }
  SECTION("a manifest signed by a key the agent never pinned") {
    REQUIRE(Publish("pkg-key", "1.0.0", channel, bytes, &u).ok());
    SigningKey rogue = *SigningKey::FromSeed(RandomBytes(32));
    v1::SignedEnvelope env =
        SignEnvelope(rogue, "redflag.v1.Manifest", u.signed_manifest().payload());
    QueryColumn("UPDATE updates.packages SET envelope = $2 WHERE id = $1 RETURNING 1",
                {u.manifest().update_id(), HexEncode(env.SerializeAsString())});
    RunningAgent agent = StartUpdatingAgent("tamper-key", channel);
    INFO(ReadFile(agent.proc->log_path()));
    CHECK(WaitForLog(*agent.proc, "update refused (key)", 10000));
    CHECK_FALSE(std::filesystem::exists(agent.installed("pkg-key")));
  }
}

TEST_CASE("a revoked update is withdrawn and never installed", "[e2e][updates][revoke]") {
  std::string channel = UniqueChannel();
  v1::Update u;
  REQUIRE(Publish("recalled", "1.0.0", channel, Bytes(2000), &u).ok());
  auto& c = Cluster::Get();
  grpc::ClientContext ctx;
  Cluster::Authorize(ctx, c.AdminToken());
  v1::RevokeUpdateRequest req;
  req.set_update_id(u.manifest().update_id());
  req.set_reason("compromised build server");
  v1::Update revoked;
  REQUIRE(c.Operator()->RevokeUpdate(&ctx, req, &revoked).ok());
  RunningAgent agent = StartUpdatingAgent("upd-revoked", channel);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  CHECK_FALSE(std::filesystem::exists(agent.installed("recalled")));
  CHECK(Deliveries(u.manifest().update_id()).deliveries_size() == 0);
}

TEST_CASE("two gateways: one publication reaches agents on both", "[e2e][updates][scale]") {
  auto& c = Cluster::Get();
  int port = 0;
  auto second = c.StartGateway({}, &port);
  std::string channel = UniqueChannel();
  RunningAgent a = StartUpdatingAgent("upd-gw1", channel);
  RunningAgent b = StartUpdatingAgent("upd-gw2", channel, "localhost:" + std::to_string(port));
  v1::Update u;
  // Published through the second gateway; the first learns of it through PostgreSQL.
  REQUIRE(
      Publish("fleetwide", "3.1.4", channel, Bytes(4000), &u, "localhost:" + std::to_string(port))
          .ok());
  CHECK(WaitForFile(a.installed("fleetwide"), 10000));
  CHECK(WaitForFile(b.installed("fleetwide"), 10000));
  CHECK(WaitForDeliveryState(u.manifest().update_id(), v1::INSTALLED, 5000));
}

// --- An attacker who controls the channel (a fake gateway with the real TLS certificate).

namespace {

struct FakeGatewayAgent {
  RunningAgent agent;
  std::string agent_id;
};

// Enrolls for real (pinning the real key), then runs the agent against `fake`.
FakeGatewayAgent EnrollThenUse(FakeGateway& fake, const std::string& name) {
  auto& c = Cluster::Get();
  FakeGatewayAgent f;
  f.agent.root = MakeMachineTree(name);
  {
    auto enroll =
        StartAgent(name + "-enroll", f.agent.root, c.gateway_address(), c.NewRegistrationToken(1));
    REQUIRE(WaitForLog(*enroll, "registered as agent", 10000));
  }
  f.agent.proc = StartAgent(name, f.agent.root, fake.address(), "");
  REQUIRE(WaitForLog(*f.agent.proc, "connected;", 10000));
  f.agent_id = fake.hello_agent_id();
  return f;
}

}  // namespace

TEST_CASE("forged, replayed, stale, misaddressed and downgrading offers are all refused",
          "[e2e][updates][adversarial]") {
  SigningKey key = ServerSigningKey();
  SigningKey rogue = *SigningKey::FromSeed(RandomBytes(32));
  FakeGateway fake;
  std::string good_bytes = Bytes(3000), v1_bytes = Bytes(3000);
  std::string good_id = RandomUuid(), old_id = RandomUuid(), rogue_id = RandomUuid(),
              tampered_id = RandomUuid(), revoked_id = RandomUuid();
  fake.Serve(good_id, good_bytes);
  fake.Serve(old_id, v1_bytes);
  fake.Serve(rogue_id, good_bytes);
  std::string flipped = good_bytes;
  flipped[1234] ^= 0x40;
  fake.Serve(tampered_id, flipped);
  fake.Serve(revoked_id, good_bytes);

  // The first stream only enrolls the agent id; scripts go on the second stream.
  FakeGatewayAgent f = EnrollThenUse(fake, "adversary");
  std::string me = f.agent_id;
  REQUIRE_FALSE(me.empty());

  v1::SignedEnvelope legit = SignedOffer(key, me, good_id, "app", "2.0.0", good_bytes);
  v1::Instruction revocation;
  revocation.set_agent_id(me);
  revocation.mutable_revocation()->set_update_id(revoked_id);
  revocation.mutable_revocation()->set_reason("recalled");
  std::vector<v1::SignedEnvelope> script = {
      legit,  // installs app 2.0.0
      legit,  // replay
      SignedOffer(key, me, RandomUuid(), "stale", "1.0.0", good_bytes,
                  absl::Now() - absl::Minutes(10)),  // expired
      SignedOffer(key, "someone-else", RandomUuid(), "misaddressed", "1.0.0", good_bytes),
      SignedOffer(rogue, me, rogue_id, "rogue", "1.0.0", good_bytes),      // unknown key
      SignedOffer(key, me, tampered_id, "tampered", "1.0.0", good_bytes),  // bytes flipped
      SignedInstruction(key, revocation),                                  // revoke ...
      SignedOffer(key, me, revoked_id, "recalled", "1.0.0", good_bytes),   // ... then offer
  };
  fake.Script(script);
  // Reconnect so the scripted stream starts: end the current one by restarting the agent.
  f.agent.proc.reset();
  f.agent.proc = StartAgent("adversary-2", f.agent.root, fake.address(), "");
  std::vector<v1::AgentMessage> acks = fake.WaitFor("ack", 8, 20000);
  INFO(ReadFile(f.agent.proc->log_path()));
  REQUIRE(acks.size() >= 8);

  // Then a downgrade of the installed app, properly signed and fresh.
  fake.Script({SignedOffer(key, me, old_id, "app", "1.9.0", v1_bytes)});
  f.agent.proc.reset();
  f.agent.proc = StartAgent("adversary-3", f.agent.root, fake.address(), "");
  acks = fake.WaitFor("ack", 9, 20000);
  std::string log = ReadFile(f.agent.proc->log_path());
  INFO(log);

  std::string installed = f.agent.root + "/state/installed/";
  CHECK(ReadFile(installed + "app") == good_bytes);  // 2.0.0 stayed
  for (const char* never : {"stale", "misaddressed", "rogue", "tampered", "recalled"}) {
    INFO(never);
    CHECK_FALSE(std::filesystem::exists(installed + never));
  }
  int applied = 0;
  std::vector<std::string> errors;
  for (const auto& a : acks) {
    if (a.ack().applied())
      ++applied;
    else
      errors.push_back(a.ack().error());
  }
  CHECK(applied == 2);  // the first offer and the revocation
  auto refused = [&](const std::string& why) {
    for (const auto& e : errors) {
      if (e.find(why) != std::string::npos) return true;
    }
    return false;
  };
  CHECK(refused("replay"));
  CHECK(refused("stale"));
  CHECK(refused("another agent"));
  CHECK(refused("not pinned"));
  CHECK(refused("SHA-256"));
  CHECK(refused("revoked"));
  CHECK(refused("downgrades are refused"));
}

TEST_CASE("ListUpdates pages in publication order", "[e2e][updates][paging]") {
  auto& c = Cluster::Get();
  const std::string channel = "paging-" + HexEncode(RandomBytes(4));
  std::vector<std::string> published;
  for (const char* v : {"1.0.0", "1.1.0", "1.2.0"}) {
    v1::Update u;
    REQUIRE(Publish("paged", v, channel, Bytes(10), &u).ok());
    published.push_back(u.manifest().update_id());
  }
  v1::ListUpdatesRequest req;
  req.set_channel(channel);
  req.set_page_size(2);
  std::vector<std::string> seen;
  int pages = 0;
  do {
    grpc::ClientContext ctx;
    Cluster::Authorize(ctx, c.AdminToken());
    v1::ListUpdatesResponse resp;
    REQUIRE(c.Operator()->ListUpdates(&ctx, req, &resp).ok());
    ++pages;
    for (const auto& u : resp.updates()) seen.push_back(u.manifest().update_id());
    req.set_page_token(resp.next_page_token());
  } while (!req.page_token().empty());
  CHECK(pages == 2);
  CHECK(seen == published);
  grpc::ClientContext ctx;
  Cluster::Authorize(ctx, c.AdminToken());
  req.set_page_token("YWdlbnRzfDF8eA");  // another RPC's kind of token
  v1::ListUpdatesResponse resp;
  grpc::Status s = c.Operator()->ListUpdates(&ctx, req, &resp);
  CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
}
