// What the fault scenarios share: a simulated fleet's options and the recorded rollout.
#pragma once

#include <string>

#include "tools/fleet/fleet.h"

namespace redflag::testing {

// Options for `agents` simulated agents, each with its own credentials from one fresh
// registration token, on a channel of their own ("<channel_prefix>-<run id>"), connecting to
// `target` (the shared cluster's gateway when empty).
fleet::FleetOptions FaultFleetOptions(int agents, const std::string& channel_prefix,
                                      const std::string& target = "");

// The update's deliveries as recorded: "STATE=count" joined by spaces, sorted by state ("" when
// there are none).
std::string RecordedStates(const std::string& update_id);

// A sample from the /metrics page on `port`, named with its labels as written there, e.g.
// `redflag_x_total{feed="agents"}` (0 when absent).
double Metric(int port, const std::string& series);

}  // namespace redflag::testing
