// Resident memory and CPU time of a process, from /proc (Linux): what the benchmark
// samples for every RedFlag process and for itself.
#pragma once

#include <sys/types.h>

#include <optional>

#include "absl/time/time.h"

namespace redflag::fleet {

struct ProcSample {
  absl::Time at;
  double rss_kib = 0;      // VmRSS
  double cpu_seconds = 0;  // user + system, all threads
};

// Nothing when the process does not exist (any more).
std::optional<ProcSample> SampleProcess(pid_t pid);
// CPU use between two samples of one process, in cores (1.0 = one core busy).
double CoresBetween(const ProcSample& a, const ProcSample& b);

}  // namespace redflag::fleet
