#include "agent/self_update.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace redflag::agent {
namespace {

absl::Status Errno(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

bool Fsync(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = fsync(fd) == 0;
  close(fd);
  return ok;
}

// Copies to `to` (mode 0755) durably.
absl::Status CopyExecutable(const std::string& from, const std::string& to) {
  std::error_code ec;
  std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing, ec);
  if (ec) return absl::InternalError(absl::StrCat("copy to ", to, ": ", ec.message()));
  if (chmod(to.c_str(), 0755) != 0 || !Fsync(to)) return Errno(absl::StrCat("prepare ", to));
  return absl::OkStatus();
}

}  // namespace

std::string SelfPath() {
  std::error_code ec;
  return std::filesystem::read_symlink("/proc/self/exe", ec).string();
}

absl::Status SelfTest(const std::string& candidate, const std::string& expected_version,
                      absl::Duration timeout) {
  if (chmod(candidate.c_str(), 0755) != 0) return Errno("chmod candidate");
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return Errno("pipe");
  pid_t pid = fork();
  if (pid < 0) {
    close(out[0]);
    close(out[1]);
    return Errno("fork");
  }
  if (pid == 0) {
    setpgid(0, 0);  // its own group: a timeout kills whatever it started too
    dup2(out[1], 1);
    execl(candidate.c_str(), candidate.c_str(), "--self_test", static_cast<char*>(nullptr));
    _exit(127);
  }
  setpgid(pid, pid);  // also here: no window in which the child is still in our group
  close(out[1]);
  absl::Time deadline = absl::Now() + timeout;
  std::string printed;
  bool eof = false;
  int status = 0;
  bool exited = false;
  while (absl::Now() < deadline) {
    if (!eof) {
      pollfd p{out[0], POLLIN, 0};
      int ms =
          static_cast<int>(std::max<int64_t>(1, absl::ToInt64Milliseconds(deadline - absl::Now())));
      int r = poll(&p, 1, std::min(ms, 100));
      if (r < 0 && errno != EINTR) break;
      if (r > 0) {
        char buf[256];
        ssize_t n = read(out[0], buf, sizeof(buf));
        if (n > 0 && printed.size() < 4096) printed.append(buf, static_cast<size_t>(n));
        if (n == 0) eof = true;
      }
    }
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) {
      exited = true;
      if (eof) break;
      // Exited: whatever it wrote is in the pipe unless a process it left holds it open.
      pollfd p{out[0], POLLIN, 0};
      while (poll(&p, 1, 0) > 0) {
        char buf[256];
        ssize_t n = read(out[0], buf, sizeof(buf));
        if (n <= 0) break;
        if (printed.size() < 4096) printed.append(buf, static_cast<size_t>(n));
      }
      break;
    }
    if (eof) absl::SleepFor(absl::Milliseconds(10));
  }
  close(out[0]);
  kill(-pid, SIGKILL);  // the canary's group is never left running, whatever happened
  if (!exited) {
    waitpid(pid, &status, 0);
    return absl::FailedPreconditionError(
        absl::StrCat("the new agent binary did not finish its self-test run within ",
                     absl::FormatDuration(timeout), "; killed"));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::FailedPreconditionError("the new agent binary failed its self-test run");
  }
  std::string version(absl::StripAsciiWhitespace(printed));
  if (version != expected_version) {
    return absl::FailedPreconditionError(absl::StrCat("the new agent binary reports version \"",
                                                      version.substr(0, 64),
                                                      "\", the manifest says ", expected_version));
  }
  return absl::OkStatus();
}

absl::Status SwapIn(const std::string& exe, const std::string& candidate) {
  std::string prev = exe + ".prev", next = exe + ".next";
  if (absl::Status s = CopyExecutable(exe, prev); !s.ok()) return s;
  if (absl::Status s = CopyExecutable(candidate, next); !s.ok()) return s;
  // rename() is atomic: the path always names a complete binary, old or new.
  if (rename(next.c_str(), exe.c_str()) != 0) return Errno(absl::StrCat("rename over ", exe));
  Fsync(std::filesystem::path(exe).parent_path().string());
  return absl::OkStatus();
}

absl::Status RollBack(const std::string& exe) {
  std::string prev = exe + ".prev";
  if (rename(prev.c_str(), exe.c_str()) != 0) return Errno(absl::StrCat("restore ", prev));
  Fsync(std::filesystem::path(exe).parent_path().string());
  return absl::OkStatus();
}

absl::Status ReExec(const std::string& exe, const std::vector<std::string>& argv) {
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execv(exe.c_str(), args.data());
  return Errno(absl::StrCat("exec ", exe));
}

}  // namespace redflag::agent
