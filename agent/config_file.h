// The agent's configuration file: JSON of redflag.v1.AgentConfigFile, which may hold a
// registration token, so it must be readable by its owner only. Reading refuses a file
// that is group- or world-accessible; writing creates it with mode 0600.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "redflag/v1/agent_state.pb.h"

namespace redflag::agent {

absl::StatusOr<v1::AgentConfigFile> ReadConfigFile(const std::string& path);
// The JSON text of a configuration file (`path` only names it in errors); unknown keys are
// errors, not silent defaults.
absl::StatusOr<v1::AgentConfigFile> ParseConfigFile(const std::string& json,
                                                    const std::string& path);
// Fails if the file exists (never overwrites a configuration).
absl::Status WriteConfigFile(const std::string& path, const v1::AgentConfigFile& config);

}  // namespace redflag::agent
