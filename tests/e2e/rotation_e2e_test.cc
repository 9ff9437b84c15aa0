// Key rotation on real processes: an updates service started with a new key and the
// previous one endorses the new key; connected agents pin it through that endorsement and
// then install updates signed by it. Runs last: it changes the shared key ring's primary.
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
  Process updates(
      "updates-rotated",
      {BinaryPath("services/updates/redflag-updates"),
       "--listen=127.0.0.1:" + std::to_string(updates_port),
       "--metrics=127.0.0.1:" + std::to_string(FreePort())},
      {{"REDFLAG_TLS_CA_FILE", PkiFile("internal-ca.crt")},
       {"REDFLAG_TLS_CERT_FILE", PkiFile("updates.crt")},
       {"REDFLAG_TLS_KEY_FILE", PkiFile("updates.key")},
       {"REDFLAG_SIGNING_PRIVATE_KEY", new_seed},
       {"REDFLAG_PREVIOUS_SIGNING_PRIVATE_KEY", TestVar("REDFLAG_SIGNING_PRIVATE_KEY")}});
  REQUIRE(WaitForPort(updates_port, 20000));
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
}
