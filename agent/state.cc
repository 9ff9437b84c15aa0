#include "agent/state.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace redflag::agent {

absl::StatusOr<StateDir> StateDir::Open(const std::string& path) {
  if (mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create state directory ", path, ": ", std::strerror(errno)));
  }
  std::string lock = path + "/agent.lock";
  int fd = open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open ", lock, ": ", std::strerror(errno)));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat("another redflag-agent is already running with state directory ", path));
  }
  return StateDir(path, fd);
}

StateDir::StateDir(StateDir&& other) noexcept
    : path_(std::move(other.path_)), lock_fd_(other.lock_fd_) {
  other.lock_fd_ = -1;
}

StateDir::~StateDir() {
  if (lock_fd_ >= 0) close(lock_fd_);
}

absl::StatusOr<std::optional<v1::AgentState>> StateDir::Load() const {
  std::string file = path_ + "/state.pb";
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::optional<v1::AgentState>();
  v1::AgentState state;
  if (!state.ParseFromIstream(&in)) {
    return absl::DataLossError(absl::StrCat(file, " is corrupt; remove it to enroll again"));
  }
  return std::optional<v1::AgentState>(std::move(state));
}

absl::Status StateDir::Save(const v1::AgentState& state) const {
  std::string file = path_ + "/state.pb";
  std::string tmp = file + ".tmp";
  std::string bytes;
  state.SerializeToString(&bytes);
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return absl::InternalError(absl::StrCat("cannot write ", tmp, ": ", std::strerror(errno)));
  bool ok =
      write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()) && fsync(fd) == 0;
  close(fd);
  // rename() is atomic: a crash leaves either the old state or the new one, never half.
  if (!ok || rename(tmp.c_str(), file.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot save ", file, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace redflag::agent
