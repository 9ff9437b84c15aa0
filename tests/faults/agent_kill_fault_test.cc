// Fault scenario 5: a real redflag-agent killed with SIGKILL at each step of an install
// (REDFLAG_CRASH_AT arms one of its crash points) and started again on the same state
// directory. After the restart it must converge to the published version, install at most
// once, report truthfully (nothing INSTALLED before it is) and leave no partial file.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/fingerprint.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "tests/faults/fault_support.h"
#include "tests/support/cluster.h"
#include "tests/support/test_env.h"
#include "tools/fleet/operator_client.h"

using namespace redflag;
using namespace redflag::testing;

namespace {

constexpr char kPlatform[] = "Linux-x86_64";

// One machine with a real agent on it; `exe` is the binary it runs (a copy for self-update).
struct Machine {
  std::string root, exe, channel, token;

  explicit Machine(const std::string& name)
      : root(MakeMachineTree(name)), channel("faults-kill-" + HexEncode(RandomBytes(4))) {
    std::filesystem::create_directories(root + "/bin");
    exe = root + "/bin/redflag-agent";
    std::filesystem::copy_file(BinaryPath("agent/redflag-agent"), exe);
    token = Cluster::Get().NewRegistrationToken(1);
  }
  std::unique_ptr<Process> Start(const std::string& name, const std::string& crash_at) const {
    std::map<std::string, std::string> env;
    if (!crash_at.empty()) env["REDFLAG_CRASH_AT"] = crash_at;
    return std::make_unique<Process>(
        name,
        std::vector<std::string>{exe, "--server=" + Cluster::Get().gateway_address(),
                                 "--ca_file=" + PkiFile("public-ca.crt"),
                                 "--state_dir=" + root + "/state", "--machine_root=" + root,
                                 "--registration_token=" + token, "--channel=" + channel,
                                 "--max_backoff_seconds=1"},
        env);
  }
  std::string AgentId() const {
    std::string prefix =
        agent::MachineFingerprint(agent::ReadFingerprintSources(root))->substr(0, 16);
    auto rows = QueryColumn(
        "SELECT id::text FROM agents.agents WHERE machine_id LIKE $1 AND deleted_at IS NULL",
        {prefix + "%"});
    return rows.empty() ? "" : rows[0];
  }
  std::string installed_dir() const { return root + "/state/installed"; }
  // Files left in the staging directory or as install temporaries.
  std::vector<std::string> Leftovers() const {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(installed_dir() + "/.staging", ec)) {
      out.push_back(e.path().string());
    }
    for (const auto& e : std::filesystem::directory_iterator(installed_dir(), ec)) {
      if (e.path().extension() == ".tmp") out.push_back(e.path().string());
    }
    for (const char* suffix : {".next"}) {
      if (std::filesystem::exists(exe + suffix)) out.push_back(exe + suffix);
    }
    return out;
  }
};

// Waits for the update's deliveries to read `want`; how long it took, or nullopt.
std::optional<absl::Duration> WaitForStates(const std::string& update_id, const std::string& want,
                                            absl::Duration within) {
  absl::Time start = absl::Now();
  while (absl::Now() - start < within) {
    if (RecordedStates(update_id) == want) return absl::Now() - start;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return std::nullopt;
}

ino_t Inode(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

fleet::OperatorClient Operator() {
  fleet::OperatorClient op(Cluster::Get().gateway_address(), ReadFile(PkiFile("public-ca.crt")));
  op.UseToken(Cluster::Get().AdminToken());
  return op;
}

}  // namespace

TEST_CASE(
    "agent killed with -9 at each install step converges: installed once, reported "
    "truthfully, no partial file",
    "[faults][agent-kill]") {
  REQUIRE(InitCrypto().ok());
  for (const std::string point : {"downloading", "verified", "renamed"}) {
    INFO("crash point " << point);
    Machine m("kill-" + point);
    auto first = m.Start("agent-kill-" + point, point);
    REQUIRE(WaitForLog(*first, "acknowledged", 15000));
    const std::string bytes = RandomBytes(4 << 20);
    absl::StatusOr<v1::Update> u =
        Operator().Publish("faults-kill-pkg", "1.0.0", kPlatform, m.channel, bytes);
    REQUIRE(u.ok());
    const std::string id = u->manifest().update_id();
    REQUIRE(WaitForLog(*first, absl::StrCat("crash point \"", point, "\" reached"), 30000));
    REQUIRE(first->Wait(10000) == -1);  // killed by the signal, not exited
    const std::string target = m.installed_dir() + "/faults-kill-pkg";
    const std::string before = RecordedStates(id);
    const ino_t inode_before = Inode(target);
    // Truthful: nothing was reported INSTALLED by an agent that died before reporting.
    CHECK(before.find("INSTALLED") == std::string::npos);
    CHECK((inode_before != 0) == (point == "renamed"));

    auto second = m.Start("agent-kill-" + point + "-restarted", "");
    std::optional<absl::Duration> took = WaitForStates(id, "INSTALLED=1", absl::Seconds(60));
    const int fetched_again = CountInLog(*second, "downloading faults-kill-pkg 1.0.0:");
    std::cout << "faults/agent kill -9 at \"" << point
              << "\": recorded before the restart: " << before << "; INSTALLED recorded "
              << (took ? absl::FormatDuration(*took) : std::string("never")) << " after it; "
              << "progress lines fetched after the restart " << fetched_again << "; leftovers "
              << m.Leftovers().size() << "\n";
    INFO(ReadFile(second->log_path()));
    REQUIRE(took.has_value());
    CHECK(ReadFile(target) == bytes);
    CHECK(m.Leftovers().empty());
    CHECK(CountInLog(*second, "installed faults-kill-pkg 1.0.0") == 1);
    if (point == "renamed") CHECK(Inode(target) == inode_before);  // not installed twice
    if (point != "downloading") CHECK(fetched_again == 0);  // complete bytes not fetched again
    // Still exactly one delivery, INSTALLED, a second later (no late duplicate).
    absl::SleepFor(absl::Seconds(1));
    CHECK(RecordedStates(id) == "INSTALLED=1");
  }
}

TEST_CASE(
    "agent killed with -9 during a self-update converges to the new version and reports "
    "INSTALLED only from it",
    "[faults][agent-kill]") {
  REQUIRE(InitCrypto().ok());
  const std::string next = ReadFile(BinaryPath("agent/redflag-agent-next"));
  const std::string old = ReadFile(BinaryPath("agent/redflag-agent"));
  for (const std::string point : {"self-update-saved", "self-update-swapped"}) {
    INFO("crash point " << point);
    Machine m("kill-" + point);
    auto first = m.Start("agent-kill-" + point, point);
    REQUIRE(WaitForLog(*first, "acknowledged", 15000));
    const std::string agent_id = m.AgentId();
    REQUIRE(!agent_id.empty());
    absl::StatusOr<v1::Update> u =
        Operator().Publish("redflag-agent", "0.3.0", kPlatform, m.channel, next, v1::AGENT);
    REQUIRE(u.ok());
    const std::string id = u->manifest().update_id();
    REQUIRE(WaitForLog(*first, absl::StrCat("crash point \"", point, "\" reached"), 30000));
    REQUIRE(first->Wait(10000) == -1);
    const std::string before = RecordedStates(id);
    CHECK(before.find("INSTALLED") == std::string::npos);
    CHECK(ReadFile(m.exe) == (point == "self-update-saved" ? old : next));

    // Restarted as a service manager would: the same path, whatever binary it now names.
    auto second = m.Start("agent-kill-" + point + "-restarted", "");
    std::optional<absl::Duration> took = WaitForStates(id, "INSTALLED=1", absl::Seconds(60));
    v1::Agent a;
    std::string version;
    for (int i = 0; i < 100 && version != "0.3.0"; ++i) {
      if (GetAgentAsAdmin(agent_id, &a).ok()) version = a.version();
      absl::SleepFor(absl::Milliseconds(100));
    }
    const int swaps = CountInLog(*second, "restarting as the new binary");
    std::cout << "faults/agent kill -9 at \"" << point
              << "\": recorded before the restart: " << before << "; INSTALLED recorded "
              << (took ? absl::FormatDuration(*took) : std::string("never"))
              << " after it; version reported " << version << "; swaps after the restart " << swaps
              << "\n";
    INFO(ReadFile(second->log_path()));
    REQUIRE(took.has_value());
    CHECK(version == "0.3.0");
    CHECK(ReadFile(m.exe) == next);
    CHECK(second->Running());
    CHECK(CountInLog(*second, "self-update confirmed") == 1);
    CHECK_FALSE(std::filesystem::exists(m.exe + ".prev"));
    CHECK(m.Leftovers().empty());
    if (point == "self-update-saved") {
      CHECK(CountInLog(*second, "was interrupted before the new binary took over") == 1);
      CHECK(swaps == 1);  // swapped once, after the re-offer
    } else {
      CHECK(swaps == 0);  // already swapped: confirmed, never swapped again
    }
    second->Kill();
  }
}
