// Named points at which a fault test can have a process killed with SIGKILL (as kill -9, an
// OOM kill or a power cut would), to prove what a restart recovers. Armed only by the
// environment variable REDFLAG_CRASH_AT=<name> (read once per process); unset, a crash point
// does nothing. Anyone able to set a process's environment can already kill it, so the hook
// grants no new power.
//
// Agent points: "downloading" (part of the package staged), "verified" (staged and checked,
// not yet renamed into place), "renamed" (installed, not yet reported), "self-update-saved"
// (the pending self-update persisted, the binary not yet swapped), "self-update-swapped" (the
// new binary in place, not yet re-executed). Gateway point: "forward-verify" (an agent's
// verify response read, not yet forwarded). Thread-safe.
#pragma once

#include <string_view>

namespace redflag {

void CrashPoint(std::string_view name);

}  // namespace redflag
