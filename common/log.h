// Minimal structured logging to stderr (one line per event, UTC timestamp, level,
// component). Callers must never pass secrets.
#pragma once

#include "absl/strings/string_view.h"

namespace redflag {

void SetLogComponent(absl::string_view component);
void LogInfo(absl::string_view message);
void LogWarn(absl::string_view message);
void LogError(absl::string_view message);

}  // namespace redflag
