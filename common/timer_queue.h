// Runs callbacks after a delay, on one thread shared by every caller: the gateway's retries
// (backend calls refused or timed out) wait here without parking a thread per stream.
// Callbacks must not block; they usually start an asynchronous call. Thread-safe.
// Each callback runs exactly once: with `true` when its time came, or with `false` when the
// queue is destroyed first (so a callback holding a reference can release it).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/time/time.h"

namespace redflag {

class TimerQueue {
 public:
  using Task = std::function<void(bool fired)>;

  TimerQueue();
  ~TimerQueue();  // Stop()
  // Runs every pending task with `false`; tasks submitted afterwards run at once with
  // `false`, on the caller's thread. Idempotent.
  void Stop();
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  void RunAfter(absl::Duration delay, Task task);
  size_t pending();

 private:
  void Loop();

  std::mutex mu_;
  std::condition_variable cv_;
  // Ordered by due time; the sequence number keeps equal times in submission order.
  std::map<std::pair<absl::Time, uint64_t>, Task> tasks_;
  uint64_t next_seq_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace redflag
