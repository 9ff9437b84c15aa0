// Named points in the agent's install and self-update steps at which a fault test can have
// the process killed with SIGKILL (as kill -9 or a power cut would), to prove what a restart
// recovers. Armed only by the environment variable REDFLAG_AGENT_CRASH_AT=<name> (read once
// per process); unset, a crash point does nothing. Anyone able to set an agent's environment
// can already kill it, so the hook grants no new power.
//
// Points: "downloading" (part of the package staged), "verified" (staged and checked, not yet
// renamed into place), "renamed" (installed, not yet reported), "self-update-saved" (the
// pending self-update persisted, the binary not yet swapped), "self-update-swapped" (the new
// binary in place, not yet re-executed). Thread-safe.
#pragma once

#include <string_view>

namespace redflag::agent {

void CrashPoint(std::string_view name);

}  // namespace redflag::agent
