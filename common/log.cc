#include "common/log.h"

#include <cstdio>
#include <mutex>
#include <string>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace redflag {
namespace {

std::mutex& Mu() {
  static std::mutex mu;
  return mu;
}
std::string& Component() {
  static std::string c = "redflag";
  return c;
}

void Write(const char* level, absl::string_view raw) {
  std::string message = EscapeForLog(raw);
  std::string ts = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  std::lock_guard<std::mutex> lock(Mu());
  std::fprintf(stderr, "%s %s %s: %.*s\n", ts.c_str(), level, Component().c_str(),
               static_cast<int>(message.size()), message.data());
  std::fflush(stderr);
}

}  // namespace

std::string EscapeForLog(absl::string_view message) {
  std::string out;
  out.reserve(message.size());
  for (unsigned char c : message) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c < 0x20 || c == 0x7f) {
      out += absl::StrFormat("\\x%02x", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

void SetLogComponent(absl::string_view component) {
  std::lock_guard<std::mutex> lock(Mu());
  Component() = std::string(component);
}
void LogInfo(absl::string_view message) { Write("INFO", message); }
void LogWarn(absl::string_view message) { Write("WARN", message); }
void LogError(absl::string_view message) { Write("ERROR", message); }

}  // namespace redflag
