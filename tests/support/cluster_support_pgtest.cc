// The test harness's own promises about ports and children: a port it hands out is one no
// outgoing connection can take before the child binds it, and a child that dies instead of
// listening is reported at once with its log, not after a long silent wait.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

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

TEST_CASE("a child that neither exits nor listens is described as the kernel sees it",
          "[support]") {
  Process p("never-listens", {"/bin/sleep", "30"}, {});
  std::string why = WaitUntilListening(p, FreePort(), 500);
  CHECK_THAT(why, Catch::Contains("did not listen"));
  // It reached execve (the program is sleep, not a copy of this test) and sleeps.
  CHECK_THAT(why, Catch::Contains("sleep, state S"));
  CHECK_THAT(why, Catch::Contains("threads 1,"));
}

TEST_CASE("children start while other threads of the test process allocate", "[support]") {
  // A fault test forks its services while a simulated fleet's threads are busy. The child
  // must not depend on any lock another thread held at the fork (allocator included): each
  // of these must exec and exit at once, never hang between fork and exec.
  struct Churn {
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    ~Churn() {
      stop = true;
      for (auto& t : threads) t.join();
    }
  } churn;
  for (int t = 0; t < 4; ++t) {
    churn.threads.emplace_back([&stop = churn.stop] {
      while (!stop.load(std::memory_order_relaxed)) {
        std::vector<std::unique_ptr<std::string>> held;
        for (int i = 0; i < 64; ++i) held.push_back(std::make_unique<std::string>(100 + i, 'x'));
      }
    });
  }
  int hung = 0;
  for (int i = 0; i < 200; ++i) {
    Process p("fork-under-churn", {"/bin/true"}, {});
    if (p.Wait(10000) != 0) ++hung;
  }
  CHECK(hung == 0);
}
