// Fans one stream of notification payloads out to many subscribers (the Watch streams of
// gateway replicas). Each subscriber has its own bounded queue; a subscriber that falls
// behind gets a gap marker (empty payload) instead of unbounded memory. Thread-safe.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace redflag {

class EventHub {
 public:
  class Subscription {
   public:
    // The next payload, or nullopt after `timeout` with nothing new.
    std::optional<std::string> Next(absl::Duration timeout);

   private:
    friend class EventHub;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::string> queue_;
  };

  explicit EventHub(size_t max_queue = 10000) : max_queue_(max_queue) {}
  std::shared_ptr<Subscription> Subscribe();
  void Unsubscribe(const std::shared_ptr<Subscription>& sub);
  void Publish(const std::string& payload);

 private:
  const size_t max_queue_;
  std::mutex mu_;
  std::vector<std::shared_ptr<Subscription>> subs_;
};

}  // namespace redflag
