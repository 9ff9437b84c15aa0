// The test harness's own promises about ports and children: a port it hands out is one no
// outgoing connection can take before the child binds it, and a child that dies instead of
// listening is reported at once with its log, not after a long silent wait.
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <set>

#include "tests/support/cluster.h"

using namespace redflag::testing;

TEST_CASE("free ports are below the ephemeral range, unused and never handed out twice",
          "[support]") {
  int ephemeral_low = 32768;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> ephemeral_low;
  std::set<int> seen;
  for (int i = 0; i < 300; ++i) {
    int port = FreePort();
    CHECK(port >= 1024);
    CHECK(port < ephemeral_low);
    CHECK(seen.insert(port).second);
  }
}

TEST_CASE("a child that exits instead of listening is reported at once with its log", "[support]") {
  Process p("exits-early", {"/bin/sh", "-c", "echo 'bind: address already in use' >&2; exit 3"},
            {});
  const auto start = std::chrono::steady_clock::now();
  std::string why = WaitUntilListening(p, FreePort(), 60000);
  const auto waited = std::chrono::steady_clock::now() - start;
  CHECK(waited < std::chrono::seconds(10));
  CHECK_THAT(why, Catch::Contains("exited (code 3)"));
  CHECK_THAT(why, Catch::Contains("bind: address already in use"));
}
