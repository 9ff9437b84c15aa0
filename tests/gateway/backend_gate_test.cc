// BackendGate bounds concurrent backend calls, starts waiting ones in order as slots free,
// and refuses (without starting) once its queue is full.
#include "services/gateway/backend_gate.h"

#include <catch2/catch.hpp>
#include <functional>
#include <vector>

using redflag::gateway::BackendGate;

TEST_CASE("a backend gate runs at most max_in_flight calls and queues the rest in order",
          "[gateway][gate]") {
  BackendGate gate("test", 2, 2);
  std::vector<int> started;
  std::vector<std::function<void()>> releases;
  int refused = 0;
  for (int i = 0; i < 5; ++i) {
    gate.Run([&, i](const absl::Status& admitted, std::function<void()> release) {
      if (!admitted.ok()) {
        CHECK(admitted.code() == absl::StatusCode::kResourceExhausted);
        CHECK(release == nullptr);
        ++refused;
        return;
      }
      started.push_back(i);
      releases.push_back(std::move(release));
    });
  }
  CHECK(started == std::vector<int>{0, 1});  // two in flight
  CHECK(gate.queued() == 2);                 // 2 and 3 wait
  CHECK(refused == 1);                       // 4 found the queue full
  CHECK(gate.refused() == 1);
  releases[0]();  // a slot frees: the oldest waiting call starts
  CHECK(started == std::vector<int>{0, 1, 2});
  releases[1]();
  releases[2]();
  CHECK(started == std::vector<int>{0, 1, 2, 3});
  CHECK(gate.in_flight() == 1);
  releases[3]();
  CHECK(gate.in_flight() == 0);
  CHECK(gate.queued() == 0);
}

TEST_CASE("a backend gate drains a long queue of calls that complete inline without recursing",
          "[gateway][gate]") {
  BackendGate gate("inline", 1, 100000);
  int completed = 0;
  std::function<void()> first_release;
  // The first call holds the only slot; 50,000 more queue behind it and each completes
  // inside its own start (as a call whose deadline already passed does in gRPC).
  gate.Run([&](const absl::Status&, std::function<void()> release) {
    first_release = std::move(release);
  });
  for (int i = 0; i < 50000; ++i) {
    gate.Run([&](const absl::Status& admitted, std::function<void()> release) {
      REQUIRE(admitted.ok());
      ++completed;
      release();
    });
  }
  first_release();
  CHECK(completed == 50000);
  CHECK(gate.in_flight() == 0);
}
