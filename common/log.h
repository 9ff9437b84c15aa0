// Minimal structured logging to stderr (one line per event, UTC timestamp, level,
// component). Messages often carry text others control (hostnames, reasons, warnings):
// control characters and backslashes are escaped, so a message can never forge a line,
// hide behind terminal escapes or be cut short by a NUL. Callers must never pass secrets.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace redflag {

void SetLogComponent(absl::string_view component);
// What Log* write for `message`: bytes below 0x20, DEL and '\\' as \xNN / \\; the rest as is.
std::string EscapeForLog(absl::string_view message);
void LogInfo(absl::string_view message);
void LogWarn(absl::string_view message);
void LogError(absl::string_view message);

}  // namespace redflag
