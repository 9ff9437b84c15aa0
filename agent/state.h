// The agent's state directory: `state.pb` (credentials, pinned keys, applied ids) written
// atomically with mode 0600, and `agent.lock`, an exclusive flock held for the process's
// life so two agents never share one state directory.
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "redflag/v1/agent_state.pb.h"

namespace redflag::agent {

class StateDir {
 public:
  // Creates the directory (0700) and takes the lock; FAILED_PRECONDITION if another
  // agent holds it.
  static absl::StatusOr<StateDir> Open(const std::string& path);
  StateDir(StateDir&& other) noexcept;
  StateDir& operator=(StateDir&&) = delete;
  ~StateDir();

  absl::StatusOr<std::optional<v1::AgentState>> Load() const;
  absl::Status Save(const v1::AgentState& state) const;

 private:
  StateDir(std::string path, int lock_fd) : path_(std::move(path)), lock_fd_(lock_fd) {}
  std::string path_;
  int lock_fd_;
};

}  // namespace redflag::agent
