// redflagctl as an operator runs it, for end-to-end tests: against the shared cluster's
// gateway, with its own config directory (so its cached token is its own).
#pragma once

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/crypto.h"
#include "tests/support/cluster.h"
#include "tests/support/test_env.h"

namespace redflag::testing {

struct Ctl {
  std::string config =
      absl::StrCat(TestVar("REDFLAG_TEST_ROOT"), "/ctl-", RandomUuid().substr(0, 8));
  // The shell command running redflagctl with `args`, `env` (VAR=value ...) prepended.
  std::string Cmd(const std::string& args, const std::string& env = "") const {
    return absl::StrCat("env XDG_CONFIG_HOME=", config, " ", env, " ",
                        BinaryPath("tools/redflagctl"),
                        " --server=", Cluster::Get().gateway_address(),
                        " --ca_file=", PkiFile("public-ca.crt"), " ", args);
  }
  // Output (stdout and stderr) and exit code.
  std::pair<std::string, int> Run(const std::string& args, const std::string& env = "") const {
    return RunCommand(Cmd(args, env));
  }
  std::string token_file() const { return config + "/redflag/token"; }
};

}  // namespace redflag::testing
