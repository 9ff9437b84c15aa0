#include "common/event_hub.h"

#include <algorithm>

namespace redflag {

std::optional<std::string> EventHub::Subscription::Next(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout),
                    [this] { return !queue_.empty(); })) {
    return std::nullopt;
  }
  std::string p = std::move(queue_.front());
  queue_.pop_front();
  return p;
}

std::shared_ptr<EventHub::Subscription> EventHub::Subscribe() {
  auto sub = std::make_shared<Subscription>();
  std::lock_guard<std::mutex> lock(mu_);
  subs_.push_back(sub);
  return sub;
}

void EventHub::Unsubscribe(const std::shared_ptr<Subscription>& sub) {
  std::lock_guard<std::mutex> lock(mu_);
  subs_.erase(std::remove(subs_.begin(), subs_.end(), sub), subs_.end());
}

void EventHub::Publish(const std::string& payload) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& sub : subs_) {
    {
      std::lock_guard<std::mutex> sl(sub->mu_);
      if (sub->queue_.size() >= max_queue_) {
        // Too far behind: drop the backlog and tell it to resynchronise.
        sub->queue_.clear();
        sub->queue_.emplace_back();
      } else {
        sub->queue_.push_back(payload);
      }
    }
    sub->cv_.notify_one();
  }
}

}  // namespace redflag
