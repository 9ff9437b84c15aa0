// Key rotation on real processes: an updates service started with a new key and the
// previous one endorses the new key; connected agents pin it through that endorsement and
// then install updates signed by it. Then the old key is revoked (as after a leak): agents
// drop it, and an attacker holding it gets nothing installed. Runs last: it changes the
// shared key ring's primary and revokes the key the shared updates service signs with.
#include <sys/utsname.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <thread>

#include "common/encoding.h"
#include "tests/support/cluster.h"
#include "tests/support/fake_gateway.h"
#include "tests/support/test_env.h"

using namespace redflag;
using namespace redflag::testing;

TEST_CASE("after a rotation, agents trust the new key only through the old key's endorsement",
          "[e2e][updates][rotation]") {
  auto& c = Cluster::Get();
  // Agents enrolled before the rotation pinned only the old key.
  std::string channel = "rot-" + HexEncode(RandomBytes(4));
  std::string root = MakeMachineTree("rotation");
  {
    auto enroll =
        StartAgent("rotation-enroll", root, c.gateway_address(), c.NewRegistrationToken(1));
    REQUIRE(WaitForLog(*enroll, "registered as agent", 10000));
  }
  // A second updates service with the new key, the old one given once to endorse it, and a
  // gateway in front of it.
  std::string new_seed = HexEncode(RandomBytes(32));
  SigningKey new_key = *SigningKey::FromSeed(*HexDecode(new_seed));
  int updates_port = FreePort();
  std::map<std::string, std::string> env = Cluster::ServiceEnv("updates");
  env["REDFLAG_SIGNING_PRIVATE_KEY"] = new_seed;
  env["REDFLAG_PREVIOUS_SIGNING_PRIVATE_KEY"] = TestVar("REDFLAG_SIGNING_PRIVATE_KEY");
  Process updates("updates-rotated",
                  {BinaryPath("services/updates/redflag-updates"),
                   "--listen=127.0.0.1:" + std::to_string(updates_port),
                   "--metrics=127.0.0.1:" + std::to_string(FreePort())},
                  env);
  REQUIRE(WaitUntilListening(updates, updates_port) == "");
  int gw_port = 0;
  auto gateway = c.StartGateway(
      {{"REDFLAG_UPDATES_ADDR", "localhost:" + std::to_string(updates_port)}}, &gw_port);
  std::string gw = "localhost:" + std::to_string(gw_port);

  auto agent = StartAgent("rotation", root, gw, "", {"--channel=" + channel});
  INFO(ReadFile(agent->log_path()) << ReadFile(updates.log_path()));
  REQUIRE(WaitForLog(*agent, "pinned new update-signing key " + new_key.KeyId(), 10000));

  // Now an update signed by the new key installs.
  struct utsname u;
  uname(&u);
  grpc::ClientContext ctx;
  Cluster::Authorize(ctx, c.AdminToken());
  v1::Update out;
  auto ops = v1::OperatorService::NewStub(
      MakeChannel(gw, TlsChannelCredentials(ReadFile(PkiFile("public-ca.crt")))));
  auto writer = ops->PublishUpdate(&ctx, &out);
  v1::PublishUpdateChunk h;
  h.mutable_header()->set_name("after-rotation");
  h.mutable_header()->set_version("1.0.0");
  h.mutable_header()->set_platform(std::string(u.sysname) + "-" + u.machine);
  h.mutable_header()->set_channel(channel);
  h.mutable_header()->set_kind(v1::PACKAGE);
  h.mutable_header()->set_size(4);
  writer->Write(h);
  v1::PublishUpdateChunk d;
  d.set_data("new!");
  writer->Write(d);
  writer->WritesDone();
  REQUIRE(writer->Finish().ok());
  CHECK(out.signed_manifest().key_id() == new_key.KeyId());
  std::string installed = root + "/state/installed/after-rotation";
  for (int i = 0; i < 200 && !std::filesystem::exists(installed); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(ReadFile(installed) == "new!");

  // --- The old key leaked: an admin revokes it (issue 10 item 4).
  SigningKey old_key = ServerSigningKey();
  auto revoke = [&](const std::string& token, const std::string& key_id, v1::SigningKey* out) {
    grpc::ClientContext rctx;
    Cluster::Authorize(rctx, token);
    v1::RevokeSigningKeyRequest req;
    req.set_key_id(key_id);
    req.set_reason("leaked in a backup");
    return ops->RevokeSigningKey(&rctx, req, out);
  };
  v1::SigningKey revoked;
  std::string operator_token = c.NewUser("keyop-" + HexEncode(RandomBytes(3)), v1::OPERATOR);
  CHECK(revoke(operator_token, old_key.KeyId(), &revoked).error_code() ==
        grpc::StatusCode::PERMISSION_DENIED);  // admins only
  CHECK(revoke(c.AdminToken(), new_key.KeyId(), &revoked).error_code() ==
        grpc::StatusCode::FAILED_PRECONDITION);  // the primary: rotate first
  CHECK(revoke(c.AdminToken(), "no-such-key", &revoked).error_code() ==
        grpc::StatusCode::NOT_FOUND);
  REQUIRE(revoke(c.AdminToken(), old_key.KeyId(), &revoked).ok());
  CHECK(revoked.state() == v1::SigningKey::REVOKED);
  CHECK(QueryColumn("SELECT count(*) FROM audit.security_events WHERE type = "
                    "'SIGNING_KEY_REVOKED' AND detail LIKE $1",
                    {"%" + old_key.KeyId() + "%"})[0] == "1");
  {
    grpc::ClientContext lctx;
    Cluster::Authorize(lctx, c.AdminToken());
    v1::ListSigningKeysResponse keys;
    REQUIRE(ops->ListSigningKeys(&lctx, {}, &keys).ok());
    for (const auto& k : keys.keys()) CHECK(k.key_id() != old_key.KeyId());
  }
  // The connected agent is told, with a revocation signed by the new key, and drops it.
  REQUIRE(WaitForLog(*agent, "revoked update-signing key " + old_key.KeyId(), 10000));

  // The attacker holds the old key and controls the channel (a fake gateway).
  FakeGateway fake;
  agent.reset();
  agent = StartAgent("rotation-attacked", root, fake.address(), "");
  REQUIRE(WaitForLog(*agent, "connected;", 10000));
  std::string me = fake.hello_agent_id();
  std::string bytes = "evil", legit_bytes = "good";
  std::string forged_id = RandomUuid(), mixed_id = RandomUuid(), legit_id = RandomUuid();
  fake.Serve(forged_id, bytes);
  fake.Serve(mixed_id, bytes);
  fake.Serve(legit_id, legit_bytes);
  v1::Instruction mixed;  // instruction signed by the good key, manifest by the revoked one
  mixed.set_agent_id(me);
  mixed.mutable_offer()->set_delivery_id(RandomUuid());
  *mixed.mutable_offer()->mutable_signed_manifest() =
      SignedManifest(old_key, mixed_id, "old-manifest", "1.0.0", bytes);
  v1::Instruction counter;  // the leaked key tries to revoke its successor
  counter.set_agent_id(me);
  counter.mutable_key_revocation()->set_key_id(new_key.KeyId());
  fake.Script({
      SignedOffer(old_key, me, forged_id, "forged-old", "1.0.0", bytes),
      SignedInstruction(new_key, mixed),
      SignedInstruction(old_key, counter),
      SignedOffer(new_key, me, legit_id, "legit-after-revocation", "1.0.0", legit_bytes),
  });
  agent.reset();
  agent = StartAgent("rotation-attacked-2", root, fake.address(), "");
  std::vector<v1::AgentMessage> acks = fake.WaitFor("ack", 4, 20000);
  INFO(ReadFile(agent->log_path()));
  REQUIRE(acks.size() >= 4);
  std::string dir = root + "/state/installed/";
  for (int i = 0; i < 100 && !std::filesystem::exists(dir + "legit-after-revocation"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK_FALSE(std::filesystem::exists(dir + "forged-old"));
  CHECK_FALSE(std::filesystem::exists(dir + "old-manifest"));
  CHECK(ReadFile(dir + "legit-after-revocation") == legit_bytes);  // the owner's key still works
  int refused_revoked = 0;
  for (const auto& a : acks) {
    if (!a.ack().applied() && a.ack().error().find("revoked key") != std::string::npos) {
      ++refused_revoked;
    }
  }
  CHECK(refused_revoked == 3);  // the forged offer, the old-key manifest, the counter-revocation
}
