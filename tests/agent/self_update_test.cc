// The self-update canary run on real child processes: a candidate must print the manifest's
// version and exit 0 within the timeout; one that hangs, or leaves a process holding its
// output open, is killed with its process group and refused in bounded time.
#include "agent/self_update.h"

#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/crypto.h"
#include "common/encoding.h"

using namespace redflag;
using namespace redflag::agent;

namespace {

struct Candidate {
  std::string dir =
      (std::filesystem::temp_directory_path() / ("canary-" + HexEncode(RandomBytes(6)))).string();
  std::string path = dir + "/redflag-agent";
  explicit Candidate(const std::string& script) {
    std::filesystem::create_directories(dir);
    std::ofstream(path) << script;
  }
  ~Candidate() { std::filesystem::remove_all(dir); }
};

double SecondsOf(const std::function<void()>& f) {
  auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Running, not merely a zombie waiting for whoever adopted it to reap it.
bool PidRunning(const std::string& pid_file) {
  std::ifstream in(pid_file);
  pid_t pid = 0;
  in >> pid;
  if (pid <= 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string pid_field, comm, state;
  if (!(stat >> pid_field >> comm >> state)) return false;
  return state != "Z";
}

// SIGKILL takes effect when the target is next scheduled: allow it a moment.
bool PidAlive(const std::string& pid_file) {
  for (int i = 0; i < 100 && PidRunning(pid_file); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return PidRunning(pid_file);
}

}  // namespace

TEST_CASE("a candidate that prints the manifest's version passes its canary run",
          "[agent][self-update]") {
  Candidate c("#!/bin/sh\n[ \"$1\" = --self_test ] || exit 9\necho 1.4.0\n");
  CHECK(SelfTest(c.path, "1.4.0", absl::Seconds(10)).ok());
  absl::Status other = SelfTest(c.path, "1.5.0", absl::Seconds(10));
  CHECK(other.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(std::string(other.message()).find("reports version \"1.4.0\"") != std::string::npos);
}

TEST_CASE("a candidate that exits non-zero fails its canary run", "[agent][self-update]") {
  Candidate c("#!/bin/sh\necho 1.4.0\nexit 3\n");
  absl::Status s = SelfTest(c.path, "1.4.0", absl::Seconds(10));
  CHECK(s.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(std::string(s.message()).find("failed its self-test run") != std::string::npos);
}

TEST_CASE("a candidate that hangs is killed at the canary timeout and refused",
          "[agent][self-update]") {
  Candidate c("#!/bin/sh\necho $$ > \"$(dirname \"$0\")/pid\"\nexec sleep 120\n");
  absl::Status s;
  double took = SecondsOf([&] { s = SelfTest(c.path, "1.4.0", absl::Seconds(1)); });
  CHECK(s.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(std::string(s.message()).find("did not finish its self-test run within 1s") !=
        std::string::npos);
  CHECK(took < 5);
  CHECK_FALSE(PidAlive(c.dir + "/pid"));
}

TEST_CASE("a candidate that leaves a process holding its output is not waited for",
          "[agent][self-update]") {
  // The script prints the right version and exits 0, but a child it started keeps the
  // output pipe open: the run counts as passed once the candidate itself exited, and the
  // leftover process is killed with the group.
  Candidate c("#!/bin/sh\necho 1.4.0\nsleep 120 &\necho $! > \"$(dirname \"$0\")/pid\"\n");
  absl::Status s;
  double took = SecondsOf([&] { s = SelfTest(c.path, "1.4.0", absl::Seconds(5)); });
  CHECK(s.ok());
  CHECK(took < 4);
  CHECK_FALSE(PidAlive(c.dir + "/pid"));
}
