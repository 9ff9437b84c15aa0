#include "services/gateway/backend_gate.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace redflag::gateway {

BackendGate::BackendGate(std::string name, size_t max_in_flight, size_t max_queued)
    : name_(std::move(name)),
      max_in_flight_(max_in_flight == 0 ? 1 : max_in_flight),
      max_queued_(max_queued) {}

void BackendGate::Run(Start start) {
  enum class Admission { kNow, kQueued, kRefused } admission;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (in_flight_ < max_in_flight_) {
      ++in_flight_;
      admission = Admission::kNow;
    } else if (waiting_.size() < max_queued_) {
      admission = Admission::kQueued;
      waiting_.push_back(std::move(start));
    } else {
      ++refused_;
      admission = Admission::kRefused;
    }
  }
  switch (admission) {
    case Admission::kNow:
      start(absl::OkStatus(), [this] { Release(); });
      return;
    case Admission::kRefused:
      start(absl::ResourceExhaustedError(
                absl::StrCat("gateway queue for ", name_, " is full; retry shortly")),
            nullptr);
      return;
    case Admission::kQueued:
      return;  // started by Release()
  }
}

namespace {
// A call may complete inline (gRPC can run a callback before async() returns, e.g. when
// the deadline has passed): started calls are trampolined so a long queue behind a dead
// backend never recurses Release -> start -> callback -> Release on one stack.
thread_local std::deque<std::function<void()>>* trampoline = nullptr;
}  // namespace

void BackendGate::Release() {
  Start next;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (waiting_.empty()) {
      --in_flight_;
      return;
    }
    next = std::move(waiting_.front());  // the slot passes to it
    waiting_.pop_front();
  }
  auto run = [this, next = std::move(next)] { next(absl::OkStatus(), [this] { Release(); }); };
  if (trampoline != nullptr) {
    trampoline->push_back(std::move(run));
    return;
  }
  std::deque<std::function<void()>> pending;
  trampoline = &pending;
  run();
  while (!pending.empty()) {
    std::function<void()> f = std::move(pending.front());
    pending.pop_front();
    f();
  }
  trampoline = nullptr;
}

size_t BackendGate::in_flight() {
  std::lock_guard<std::mutex> lock(mu_);
  return in_flight_;
}

size_t BackendGate::queued() {
  std::lock_guard<std::mutex> lock(mu_);
  return waiting_.size();
}

uint64_t BackendGate::refused() {
  std::lock_guard<std::mutex> lock(mu_);
  return refused_;
}

}  // namespace redflag::gateway
