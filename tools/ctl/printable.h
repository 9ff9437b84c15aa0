// Text from the server made safe for an operator's terminal.
#pragma once

#include <string>

#include "absl/strings/str_cat.h"

namespace redflag::ctl {

// Control characters are shown escaped (\x1b), never interpreted by the terminal; more than
// `max` bytes end in "...".
inline std::string Printable(const std::string& s, size_t max) {
  std::string out;
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) {
      out += absl::StrCat("\\x", absl::Hex(c, absl::kZeroPad2));
    } else {
      out += static_cast<char>(c);
    }
  }
  if (out.size() > max) out = out.substr(0, max - 3) + "...";
  return out;
}

}  // namespace redflag::ctl
