// ConfigureProcess: absl's deadlock graph is off (Debian's Abseil aborts on a lock-order
// cycle by default, and pays for the graph on every lock).
#include "common/process.h"

#include <catch2/catch.hpp>

#include "absl/synchronization/mutex.h"

TEST_CASE("after ConfigureProcess, absl::Mutex keeps no deadlock graph", "[process]") {
  redflag::ConfigureProcess();
  absl::Mutex a;
  absl::Mutex b;
  {
    absl::MutexLock la(&a);
    absl::MutexLock lb(&b);
  }
  {
    // The opposite order: with the graph on, absl reports this cycle and aborts the process.
    absl::MutexLock lb(&b);
    absl::MutexLock la(&a);
  }
  SUCCEED("no lock-order report");
}
