// Agent self-update on real processes: the verified new binary passes a canary run, takes
// the running binary's place by rename, the process re-execs and confirms with a check-in.
// A candidate that fails its canary run is refused and the running binary is untouched.
#include <sys/utsname.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "agent/fingerprint.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "tests/support/cluster.h"
#include "tests/support/test_env.h"

using namespace redflag;
using namespace redflag::testing;

namespace {

grpc::Status PublishAgent(const std::string& version, const std::string& channel,
                          const std::string& bytes, v1::Update* out) {
  auto& c = Cluster::Get();
  struct utsname u;
  uname(&u);
  grpc::ClientContext ctx;
  Cluster::Authorize(ctx, c.AdminToken());
  auto writer = c.Operator()->PublishUpdate(&ctx, out);
  v1::PublishUpdateChunk h;
  h.mutable_header()->set_name("redflag-agent");
  h.mutable_header()->set_version(version);
  h.mutable_header()->set_platform(absl::StrCat(u.sysname, "-", u.machine));
  h.mutable_header()->set_channel(channel);
  h.mutable_header()->set_kind(v1::AGENT);
  h.mutable_header()->set_size(static_cast<int64_t>(bytes.size()));
  writer->Write(h);
  for (size_t off = 0; off < bytes.size(); off += 1 << 20) {
    v1::PublishUpdateChunk d;
    d.set_data(bytes.substr(off, 1 << 20));
    writer->Write(d);
  }
  writer->WritesDone();
  return writer->Finish();
}

std::string AgentVersion(const std::string& id) {
  v1::Agent a;
  return GetAgentAsAdmin(id, &a).ok() ? a.version() : "";
}

}  // namespace

TEST_CASE("an agent self-updates: canary run, atomic swap, re-exec, confirmed by check-in",
          "[e2e][updates][self-update]") {
  auto& c = Cluster::Get();
  std::string channel = "self-" + HexEncode(RandomBytes(4));
  std::string root = MakeMachineTree("self-update");
  // Run a copy: the swap replaces the file the process runs from.
  std::filesystem::create_directories(root + "/bin");
  std::string exe = root + "/bin/redflag-agent";
  std::filesystem::copy_file(BinaryPath("agent/redflag-agent"), exe);
  Process agent("agent-self-update",
                {exe, "--server=" + c.gateway_address(), "--ca_file=" + PkiFile("public-ca.crt"),
                 "--state_dir=" + root + "/state", "--machine_root=" + root,
                 "--registration_token=" + c.NewRegistrationToken(1), "--channel=" + channel,
                 "--max_backoff_seconds=1"},
                {});
  REQUIRE(WaitForLog(agent, "acknowledged", 10000));
  std::string prefix =
      agent::MachineFingerprint(agent::ReadFingerprintSources(root))->substr(0, 16);
  std::string id = QueryColumn(
      "SELECT id::text FROM agents.agents WHERE machine_id LIKE $1 "
      "AND deleted_at IS NULL",
      {prefix + "%"})[0];
  REQUIRE(AgentVersion(id) == "0.2.0");

  // A candidate that does not run is refused before anything is swapped.
  std::string broken = "#!/bin/sh\nexit 3\n";
  v1::Update bad;
  REQUIRE(PublishAgent("0.2.5", channel, broken, &bad).ok());
  INFO(ReadFile(agent.log_path()));
  REQUIRE(WaitForLog(agent, "failed its self-test run", 10000));
  CHECK(ReadFile(exe) == ReadFile(BinaryPath("agent/redflag-agent")));

  std::string next = ReadFile(BinaryPath("agent/redflag-agent-next"));
  v1::Update u;
  REQUIRE(PublishAgent("0.3.0", channel, next, &u).ok());
  std::string version;
  for (int i = 0; i < 300 && version != "0.3.0"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    version = AgentVersion(id);
  }
  CHECK(version == "0.3.0");
  CHECK(WaitForLog(agent, "self-update confirmed", 10000));
  CHECK(ReadFile(exe) == next);
  CHECK_FALSE(std::filesystem::exists(exe + ".prev"));
  CHECK(agent.Running());  // the same process, re-executed
}
