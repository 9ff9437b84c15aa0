// Process-wide settings every long-running RedFlag binary applies first thing in main().
#pragma once

namespace redflag {

// Turns off absl::Mutex's deadlock detection. Debian builds Abseil without NDEBUG, so it is on
// by default and records every lock acquisition in a global graph (absl's GraphCycles) —
// gRPC's own mutexes included. Profiled at 3,000 agents it was 7.8 % of all CPU on the
// machine. RedFlag's locks are std::mutex; the sanitizer builds (TSan) check their order.
void ConfigureProcess();

}  // namespace redflag
