// Replacing the running agent binary. A verified candidate must first pass a canary run
// (`<candidate> --self_test` prints exactly the advertised version and exits 0 within a
// timeout; a candidate that hangs is killed with its whole process group); the current binary is
// kept as <exe>.prev, the candidate takes its name by rename, and the process re-execs.
// RollBack() restores <exe>.prev. The caller persists the pending state around these steps.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace redflag::agent {

// The running executable's path.
std::string SelfPath();
// FAILED_PRECONDITION naming what went wrong when the candidate exits non-zero, prints another
// version, or has not exited within `timeout` (it and every process it started are killed).
absl::Status SelfTest(const std::string& candidate, const std::string& expected_version,
                      absl::Duration timeout);
absl::Status SwapIn(const std::string& exe, const std::string& candidate);
absl::Status RollBack(const std::string& exe);
// Replaces this process with `exe` run with `argv`; returns only on failure.
absl::Status ReExec(const std::string& exe, const std::vector<std::string>& argv);

}  // namespace redflag::agent
