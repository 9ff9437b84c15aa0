// Log lines carry text others control: nothing in a message may forge a line, hide behind a
// terminal escape, or be cut short by a NUL.
#include "common/log.h"

#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <sstream>

using redflag::EscapeForLog;

TEST_CASE("control characters, DEL and backslashes are escaped", "[log]") {
  CHECK(EscapeForLog("plain text, ünïcode kept") == "plain text, ünïcode kept");
  CHECK(EscapeForLog("a\r\nb") == "a\\x0d\\x0ab");
  CHECK(EscapeForLog("\x1b[31mred") == "\\x1b[31mred");
  CHECK(EscapeForLog(std::string("before\0after", 12)) == "before\\x00after");
  CHECK(EscapeForLog("\x7f") == "\\x7f");
  // A literal "\x0a" typed by an attacker stays distinguishable from an escaped newline.
  CHECK(EscapeForLog("\\x0a") == "\\\\x0a");
}

TEST_CASE("a hostile message is written as one line, whole", "[log]") {
  char path[] = "/tmp/redflag-log-test-XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  std::fflush(stderr);
  int saved = dup(2);
  dup2(fd, 2);
  static const char kHostile[] = "hostname evil\n2026-11-23T00:00:00.000Z ERROR forged\0tail";
  redflag::LogWarn(std::string(kHostile, sizeof(kHostile) - 1));
  std::fflush(stderr);
  dup2(saved, 2);
  close(saved);
  close(fd);
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  unlink(path);
  std::string out = ss.str();
  CHECK(std::count(out.begin(), out.end(), '\n') == 1);
  CHECK(out.find("evil\\x0a2026") != std::string::npos);
  CHECK(out.find("forged\\x00tail") != std::string::npos);
}
