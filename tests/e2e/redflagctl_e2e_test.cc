// redflagctl against the real gateway: login keeps the token 0600 and later commands use it,
// exit codes tell usage, authentication, not-found apart, every command has --help, and the
// hardening guide's incident procedures each run as one command or a short pipeline.
#include <google/protobuf/descriptor.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent/fingerprint.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "tests/support/cluster.h"
#include "tests/support/ctl.h"
#include "tests/support/test_env.h"

using namespace redflag;
using namespace redflag::testing;

namespace {

Ctl LoggedIn() {
  Ctl ctl;
  auto [out, rc] = ctl.Run("login", "REDFLAG_PASSWORD='" + TestVar("REDFLAG_ADMIN_PASSWORD") + "'");
  INFO(out);
  REQUIRE(rc == 0);
  return ctl;
}

std::string Trim(const std::string& s) { return std::string(absl::StripAsciiWhitespace(s)); }

}  // namespace

TEST_CASE("redflagctl login keeps the token 0600 and later commands use it", "[e2e][redflagctl]") {
  Ctl ctl = LoggedIn();
  struct stat st {};
  REQUIRE(stat(ctl.token_file().c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(stat((ctl.config + "/redflag").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  auto [out, rc] = ctl.Run("list-agents --page_size=5");
  INFO(out);
  CHECK(rc == 0);
  CHECK(out.rfind("ID ", 0) == 0);  // a table, headed by the id column
  CHECK(out.find("total_size: ") != std::string::npos);
}

TEST_CASE("redflagctl exit codes tell usage, authentication and not-found apart",
          "[e2e][redflagctl]") {
  Ctl anonymous;
  CHECK(anonymous.Run("list-agents").second == 4);  // not logged in
  CHECK(anonymous.Run("list-agents", "REDFLAG_TOKEN=forged.token.here").second == 4);
  auto [wrong_pw, rc_pw] = anonymous.Run("login", "REDFLAG_PASSWORD=wrong-password");
  CHECK(rc_pw == 4);
  CHECK(wrong_pw.find("UNAUTHENTICATED") != std::string::npos);

  Ctl ctl = LoggedIn();
  auto [nf, rc_nf] = ctl.Run("get-agent --id " + RandomUuid());
  CHECK(rc_nf == 5);
  CHECK(nf.find("NOT_FOUND") != std::string::npos);
  CHECK(ctl.Run("no-such-command").second == 2);
  auto [bad, rc_bad] = ctl.Run("list-agents --status=sideways");
  CHECK(rc_bad == 2);
  CHECK(bad.find("--status is one of online, offline, blocked") != std::string::npos);
  auto [unknown, rc_unknown] = ctl.Run("block-agent --colour=red");
  CHECK(rc_unknown == 2);
  CHECK(unknown.find("unknown option --colour") != std::string::npos);
  CHECK(ctl.Run("get-agent --id not-a-uuid").second == 2);  // the server refuses the input
}

TEST_CASE("every redflagctl command has --help naming its options", "[e2e][redflagctl]") {
  Ctl ctl;
  auto [usage, rc] = ctl.Run("--help");
  REQUIRE(rc == 0);
  std::vector<std::string> commands;
  for (absl::string_view line : absl::StrSplit(usage, '\n')) {
    // Command lines: two spaces, then a name of lower-case letters and dashes.
    if (!absl::StartsWith(line, "  ")) continue;
    absl::string_view name = line.substr(2, line.find(' ', 2) - 2);
    bool is_name = name.size() > 2 && name.find('-') != absl::string_view::npos;
    for (char ch : name) is_name &= (ch >= 'a' && ch <= 'z') || ch == '-';
    if (is_name && name != "create-token" && name != "verify-audit") {
      commands.push_back(std::string(name));
    }
  }
  // Every OperatorService method has its command (Login is `login`).
  const auto* service = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
      "redflag.v1.OperatorService");
  REQUIRE(service != nullptr);
  for (int i = 0; i < service->method_count(); ++i) {
    std::string kebab;
    for (char ch : service->method(i)->name()) {
      if (ch >= 'A' && ch <= 'Z') {
        if (!kebab.empty()) kebab += '-';
        kebab += static_cast<char>(ch - 'A' + 'a');
      } else {
        kebab += ch;
      }
    }
    INFO("OperatorService." << service->method(i)->name());
    CHECK(usage.find("  " + kebab + " ") != std::string::npos);
  }
  for (const auto& cmd : commands) {
    auto [help, hrc] = ctl.Run(cmd + " --help");
    INFO(cmd << ": " << help);
    CHECK(hrc == 0);
    CHECK(help.rfind("redflagctl " + cmd + ": ", 0) == 0);
  }
  auto [block, brc] = ctl.Run("block-agent --help");
  CHECK(block.find("--id=text") != std::string::npos);
  CHECK(block.find("--reason=text") != std::string::npos);
}

TEST_CASE("redflagctl shows and changes edge rate limits as RATE:BURST", "[e2e][redflagctl]") {
  Ctl ctl = LoggedIn();
  auto [shown, rc] = ctl.Run("get-security-settings");
  INFO(shown);
  REQUIRE(rc == 0);
  CHECK(shown.find("login_rate_limit") != std::string::npos);
  CHECK(shown.find("10000:10000") != std::string::npos);  // the shared cluster's value
  auto [help, hrc] = ctl.Run("update-security-settings --help");
  CHECK(hrc == 0);
  CHECK(help.find("--login_rate_limit=RATE:BURST") != std::string::npos);
  // Refused before anything is sent, with the form or the range.
  auto [form, frc] =
      ctl.Run("update-security-settings --login_rate_limit=fast --reason 'ctl test'");
  CHECK(frc == 2);
  CHECK(form.find("--login_rate_limit must be RATE:BURST") != std::string::npos);
  auto [range, rrc] =
      ctl.Run("update-security-settings --login_rate_limit=0:5 --reason 'ctl test'");
  CHECK(rrc == 2);
  CHECK(range.find("rate of 0.01..1e+06 per second") != std::string::npos);
  // A change and its undo (both audited), shown in the reply.
  auto [changed, crc] =
      ctl.Run("update-security-settings --operator_write_rate_limit=5000:9000 --reason 'ctl test'");
  INFO(changed);
  CHECK(crc == 0);
  CHECK(changed.find("5000:9000") != std::string::npos);
  CHECK(ctl.Run("update-security-settings --operator_write_rate_limit=10000:10000 "
                "--reason 'ctl test: undo'")
            .second == 0);
}

TEST_CASE("incident procedures of the hardening guide, each one command or pipeline",
          "[e2e][redflagctl][incident]") {
  REQUIRE(InitCrypto().ok());
  auto& c = Cluster::Get();
  Ctl ctl = LoggedIn();
  std::string root = MakeMachineTree("incident");
  auto agent = StartAgent("agent-incident", root, c.gateway_address(), c.NewRegistrationToken(1),
                          {"--channel=incident"});
  REQUIRE(WaitForLog(*agent, "acknowledged", 15000));
  std::optional<v1::Agent> a = FindAgentByMachine(
      agent::MachineFingerprint(agent::ReadFingerprintSources(root))->substr(0, 16));
  REQUIRE(a.has_value());
  const std::string id = a->id();

  // 1. Revoke an update: publish a file, then revoke it by id.
  std::string file = ctl.config + "-pkg.bin";
  std::ofstream(file) << RandomBytes(200000);
  auto [pub, prc] = ctl.Run("--ids publish-update --file " + file + " --name incident-" +
                            HexEncode(RandomBytes(4)) +
                            " --version 1.0.0 --platform Linux-x86_64"
                            " --channel incident-none");
  INFO(pub);
  REQUIRE(prc == 0);
  const std::string update_id = Trim(pub);
  REQUIRE(update_id.size() == 36);
  auto [rev, rrc] = ctl.Run("revoke-update --update_id " + update_id +
                            " --reason 'incident 42: package withdrawn'");
  INFO(rev);
  CHECK(rrc == 0);
  auto [got, grc] = ctl.Run("--json get-update --update_id " + update_id);
  CHECK(grc == 0);
  CHECK(got.find("\"revoked\": true") != std::string::npos);

  // 2. Force verification of every agent.
  auto [ver, vrc] = RunCommand(ctl.Cmd("--ids list-agents --status=online") + " | xargs -n1 " +
                               ctl.Cmd("--ids verify-agent --id"));
  INFO(ver);
  CHECK(vrc == 0);
  CHECK(ver.find(id) != std::string::npos);
  std::string result;
  for (int i = 0; i < 100 && result != "ok"; ++i) {
    v1::Agent now;
    if (GetAgentAsAdmin(id, &now).ok()) result = now.verify_result();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(result == "ok");

  // 3. Block an agent (after violations were seen in its events).
  auto [blk, brc] = ctl.Run("block-agent --id " + id + " --reason 'incident 42: violations'");
  INFO(blk);
  CHECK(brc == 0);
  CHECK(blk.find("status: blocked") != std::string::npos);
  CHECK(WaitForLog(*agent, "this agent has been blocked", 15000));

  // 4. Collect events for forensics: the events as JSON, and the chain verified.
  std::string evidence = ctl.config + "-events.json";
  auto [ev, erc] = RunCommand(ctl.Cmd("--json list-security-events") + " > " + evidence + " && " +
                              ctl.Cmd("verify-audit"));
  INFO(ev);
  CHECK(erc == 0);
  CHECK(ev.find("intact: true") != std::string::npos);
  std::string events = ReadFile(evidence);
  CHECK(events.find("AGENT_BLOCKED") != std::string::npos);
  CHECK(events.find("UPDATE_REVOKED") != std::string::npos);
}
