// TimerQueue runs each task once: in due order when its time comes, or with `false` when
// the queue stops first (so held references are released).
#include "common/timer_queue.h"

#include <catch2/catch.hpp>
#include <mutex>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"

using redflag::TimerQueue;

TEST_CASE("timer tasks run in due order, not submission order", "[common][timer]") {
  TimerQueue q;
  std::mutex mu;
  std::vector<int> order;
  bool all_fired = true;
  absl::Notification done;
  // Runs on the timer thread: records only (Catch2 assertions are for the test's thread).
  auto record = [&](int i) {
    return [&, i](bool fired) {
      std::lock_guard<std::mutex> lock(mu);
      all_fired = all_fired && fired;
      order.push_back(i);
      if (order.size() == 3) done.Notify();
    };
  };
  absl::Time start = absl::Now();
  q.RunAfter(absl::Milliseconds(60), record(3));
  q.RunAfter(absl::Milliseconds(20), record(1));
  q.RunAfter(absl::Milliseconds(40), record(2));
  REQUIRE(done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  CHECK(absl::Now() - start >= absl::Milliseconds(60));
  std::lock_guard<std::mutex> lock(mu);
  CHECK(all_fired);
  CHECK(order == std::vector<int>{1, 2, 3});
}

TEST_CASE("stopping a timer queue runs pending tasks once with false, and later ones at once",
          "[common][timer]") {
  TimerQueue q;
  int fired = 0, cancelled = 0;
  q.RunAfter(absl::Hours(1), [&](bool f) { f ? ++fired : ++cancelled; });
  q.RunAfter(absl::Hours(2), [&](bool f) { f ? ++fired : ++cancelled; });
  CHECK(q.pending() == 2);
  q.Stop();
  CHECK(cancelled == 2);
  q.RunAfter(absl::Milliseconds(1), [&](bool f) { f ? ++fired : ++cancelled; });
  CHECK(cancelled == 3);
  CHECK(fired == 0);
  q.Stop();  // idempotent
}
