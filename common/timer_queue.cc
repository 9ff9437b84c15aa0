#include "common/timer_queue.h"

#include <vector>

#include "absl/time/clock.h"

namespace redflag {

TimerQueue::TimerQueue() : thread_([this] { Loop(); }) {}

TimerQueue::~TimerQueue() { Stop(); }

void TimerQueue::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
  std::map<std::pair<absl::Time, uint64_t>, Task> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    left.swap(tasks_);
  }
  for (auto& [key, task] : left) task(false);
}

void TimerQueue::RunAfter(absl::Duration delay, Task task) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (!stopping_) {
      tasks_.emplace(std::make_pair(absl::Now() + delay, next_seq_++), std::move(task));
      lock.unlock();
      cv_.notify_one();
      return;
    }
  }
  task(false);  // stopped: never queued
}

size_t TimerQueue::pending() {
  std::lock_guard<std::mutex> lock(mu_);
  return tasks_.size();
}

void TimerQueue::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (tasks_.empty()) {
      cv_.wait(lock);
      continue;
    }
    absl::Time due = tasks_.begin()->first.first;
    absl::Time now = absl::Now();
    if (due > now) {
      cv_.wait_for(lock, absl::ToChronoNanoseconds(due - now));
      continue;
    }
    std::vector<Task> ready;
    while (!tasks_.empty() && tasks_.begin()->first.first <= now) {
      ready.push_back(std::move(tasks_.begin()->second));
      tasks_.erase(tasks_.begin());
    }
    lock.unlock();
    for (Task& t : ready) t(true);
    lock.lock();
  }
}

}  // namespace redflag
