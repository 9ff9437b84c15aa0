// redflag-agent: enrolls this machine with a registration token, then keeps one stream
// to the gateway for check-ins. Configuration from flags or REDFLAG_* variables.
#include <sys/utsname.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "agent/client.h"
#include "agent/config_file.h"
#include "agent/fingerprint.h"
#include "agent/state.h"
#include "common/config.h"
#include "common/crypto.h"
#include "common/log.h"
#include "common/process.h"
#include "common/runtime.h"
#include "common/server.h"
#include "common/tls.h"

ABSL_FLAG(std::string, server, "", "gateway host:port (REDFLAG_SERVER)");
ABSL_FLAG(std::string, ca_file, "", "CA certificate of the gateway (REDFLAG_CA_FILE)");
ABSL_FLAG(std::string, state_dir, "",
          "state directory (credentials, lock); default /var/lib/redflag");
ABSL_FLAG(std::string, registration_token, "", "registration token (REDFLAG_REGISTRATION_TOKEN)");
ABSL_FLAG(std::string, pinned_key_id, "", "require this update-signing key fingerprint");
ABSL_FLAG(std::string, machine_root, "/", "root of the fingerprint sources (tests use a tree)");
ABSL_FLAG(std::string, install_dir, "",
          "where packages are installed (default STATE_DIR/installed)");
ABSL_FLAG(std::string, channel, "", "update channel to follow (default stable)");
ABSL_FLAG(std::string, config, "", "JSON config file (mode 0600); flags override it");
ABSL_FLAG(std::string, init_config, "",
          "write the given flags to this new config file (0600) and exit");
ABSL_FLAG(int, max_backoff_seconds, 60, "cap of the reconnect backoff");
ABSL_FLAG(bool, self_test, false, "print the version and exit (the canary run of a self-update)");
ABSL_FLAG(int, self_update_confirm_seconds, 60, "roll a self-update back if no check-in by then");
ABSL_FLAG(int, self_test_timeout_seconds, 10,
          "kill a new agent binary's canary run and refuse the update if it runs longer (1-300)");
ABSL_FLAG(std::string, report_version, REDFLAG_AGENT_VERSION, "agent version to report");

namespace {

constexpr char kName[] = "redflag-agent";
std::vector<std::string> g_argv;

// Flag, then environment variable, then config file, then default.
std::string Pick(const std::string& flag, const char* env, const std::string& file = "",
                 const std::string& fallback = "") {
  if (!flag.empty()) return flag;
  if (env != nullptr && !redflag::Env::Optional(env, "").empty())
    return redflag::Env::Optional(env, "");
  return file.empty() ? fallback : file;
}

int Run() {
  using namespace redflag;
  BlockShutdownSignals();
  SetLogComponent(kName);
  if (absl::Status s = InitCrypto(); !s.ok()) return ExitWithError(kName, s);
  if (std::string path = absl::GetFlag(FLAGS_init_config); !path.empty()) {
    v1::AgentConfigFile out;
    out.set_server(absl::GetFlag(FLAGS_server));
    out.set_ca_file(absl::GetFlag(FLAGS_ca_file));
    out.set_state_dir(absl::GetFlag(FLAGS_state_dir));
    out.set_install_dir(absl::GetFlag(FLAGS_install_dir));
    out.set_registration_token(absl::GetFlag(FLAGS_registration_token));
    out.set_channel(absl::GetFlag(FLAGS_channel));
    out.set_pinned_key_id(absl::GetFlag(FLAGS_pinned_key_id));
    if (absl::Status s = agent::WriteConfigFile(path, out); !s.ok()) return ExitWithError(kName, s);
    LogInfo(absl::StrCat("wrote ", path, " (mode 0600)"));
    return 0;
  }
  v1::AgentConfigFile file;
  if (std::string path = absl::GetFlag(FLAGS_config); !path.empty()) {
    absl::StatusOr<v1::AgentConfigFile> read = agent::ReadConfigFile(path);
    if (!read.ok()) return ExitWithError(kName, read.status());
    file = *std::move(read);
  }
  agent::AgentConfig cfg;
  cfg.server = Pick(absl::GetFlag(FLAGS_server), "REDFLAG_SERVER", file.server());
  std::string ca_file = Pick(absl::GetFlag(FLAGS_ca_file), "REDFLAG_CA_FILE", file.ca_file());
  if (cfg.server.empty() || ca_file.empty()) {
    return ExitWithError(kName,
                         absl::InvalidArgumentError("--server and --ca-file (or REDFLAG_SERVER and "
                                                    "REDFLAG_CA_FILE) are required"));
  }
  absl::StatusOr<std::string> ca = ReadPemFile(ca_file, "CA certificate");
  if (!ca.ok()) return ExitWithError(kName, ca.status());
  cfg.ca_pem = *ca;
  cfg.registration_token = Pick(absl::GetFlag(FLAGS_registration_token),
                                "REDFLAG_REGISTRATION_TOKEN", file.registration_token());
  cfg.pinned_key_id = Pick(absl::GetFlag(FLAGS_pinned_key_id), nullptr, file.pinned_key_id());
  std::string state_dir =
      Pick(absl::GetFlag(FLAGS_state_dir), nullptr, file.state_dir(), "/var/lib/redflag");
  cfg.version = absl::GetFlag(FLAGS_report_version);
  cfg.channel = Pick(absl::GetFlag(FLAGS_channel), nullptr, file.channel(), "stable");
  cfg.install_dir =
      Pick(absl::GetFlag(FLAGS_install_dir), nullptr, file.install_dir(), state_dir + "/installed");
  cfg.argv = g_argv;
  cfg.self_update_confirm_within =
      absl::Seconds(std::max(5, absl::GetFlag(FLAGS_self_update_confirm_seconds)));
  int self_test_seconds = absl::GetFlag(FLAGS_self_test_timeout_seconds);
  if (self_test_seconds < 1 || self_test_seconds > 300) {
    return ExitWithError(
        kName, absl::InvalidArgumentError(absl::StrCat(
                   "--self_test_timeout_seconds must be 1-300, got ", self_test_seconds)));
  }
  cfg.self_test_timeout = absl::Seconds(self_test_seconds);
  cfg.max_backoff = absl::Seconds(std::max(1, absl::GetFlag(FLAGS_max_backoff_seconds)));
  absl::StatusOr<std::string> fp =
      agent::MachineFingerprint(agent::ReadFingerprintSources(absl::GetFlag(FLAGS_machine_root)));
  if (!fp.ok()) return ExitWithError(kName, fp.status());
  cfg.machine_id = *fp;
  std::string machine_root = absl::GetFlag(FLAGS_machine_root);
  cfg.fingerprint = [machine_root] {
    return agent::MachineFingerprint(agent::ReadFingerprintSources(machine_root));
  };
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  cfg.hostname = host;
  struct utsname u;
  cfg.platform = uname(&u) == 0 ? absl::StrCat(u.sysname, "-", u.machine) : "unknown";

  absl::StatusOr<agent::StateDir> state = agent::StateDir::Open(state_dir);
  if (!state.ok()) return ExitWithError(kName, state.status());
  agent::AgentClient client(cfg, *std::move(state));
  if (absl::Status s = client.EnsureEnrolled(); !s.ok()) return ExitWithError(kName, s);

  std::thread signals([&client] {
    WaitForShutdownSignal();
    client.Stop();
  });
  client.Run();
  signals.join();
  LogInfo("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  redflag::ConfigureProcess();
  absl::ParseCommandLine(argc, argv);
  if (absl::GetFlag(FLAGS_self_test)) {
    std::printf("%s\n", absl::GetFlag(FLAGS_report_version).c_str());
    return 0;
  }
  g_argv.assign(argv, argv + argc);
  return Run();
}
