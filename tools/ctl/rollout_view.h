// A staged rollout as an operator reads it on a terminal: its state and why, then one row
// per stage with the plan's thresholds and the members by delivery state. (--json prints
// the Rollout message itself.)
#pragma once

#include <iosfwd>

#include "redflag/v1/updates.pb.h"

namespace redflag::ctl {

void PrintRollout(const v1::Rollout& r, std::ostream& out);

}  // namespace redflag::ctl
