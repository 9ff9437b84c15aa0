#include "services/gateway/check_in_batcher.h"

#include <memory>

#include "common/status.h"
#include "services/gateway/backends.h"
#include "services/gateway/outcome_forwarder.h"

namespace redflag::gateway {

namespace {
constexpr absl::Duration kFirstRetry = absl::Milliseconds(500);
constexpr absl::Duration kMaxRetry = absl::Seconds(2);
}  // namespace

CheckInBatcher::CheckInBatcher(v1::AgentsService::Stub* agents, BackendGate* gate,
                               absl::Duration max_delay, size_t max_batch, size_t max_held,
                               Metrics metrics)
    : agents_(agents),
      gate_(gate),
      max_delay_(max_delay),
      max_batch_(max_batch),
      max_held_(max_held),
      metrics_(metrics),
      thread_([this] { Loop(); }) {}

CheckInBatcher::~CheckInBatcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
  // Batches in flight end within their 10 s deadline and call back into this object: wait.
  std::vector<Item> left;
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return in_flight_ == 0; });
    left.swap(retry_);
  }
  // What waits for a retry is answered now.
  for (auto& it : left) it.done(absl::UnavailableError("gateway stopping; check-in not recorded"));
}

void CheckInBatcher::Submit(v1::CheckIn check_in, Done done) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (pending_.size() + retry_.size() + in_flight_ >= max_held_) {
      if (metrics_.dropped != nullptr) metrics_.dropped->Increment();
      done(absl::ResourceExhaustedError(
          "too many check-ins waiting for the agents service; check in again later"));
      return;
    }
    pending_.push_back({std::move(check_in), std::move(done)});
    // The first item starts the batch's delay clock; a full batch leaves at once.
    wake = pending_.size() == 1 || pending_.size() >= max_batch_;
  }
  if (wake) cv_.notify_one();
}

void CheckInBatcher::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    auto ready = [this] {
      return stopping_ || !pending_.empty() || (!retry_.empty() && absl::Now() >= retry_at_);
    };
    if (retry_.empty()) {
      cv_.wait(lock, ready);
    } else {
      cv_.wait_until(lock, absl::ToChronoTime(retry_at_), ready);
    }
    if (!retry_.empty() && absl::Now() >= retry_at_) {
      // Due retries go first, in the order they were submitted.
      if (metrics_.retried != nullptr) metrics_.retried->Increment(retry_.size());
      if (metrics_.waiting_retry != nullptr) metrics_.waiting_retry->Set(0);
      pending_.insert(pending_.begin(), std::make_move_iterator(retry_.begin()),
                      std::make_move_iterator(retry_.end()));
      retry_.clear();
    }
    if (!stopping_ && !pending_.empty() && pending_.size() < max_batch_) {
      // Let the batch fill for up to max_delay after its first item.
      cv_.wait_for(lock, absl::ToChronoMilliseconds(max_delay_),
                   [this] { return stopping_ || pending_.size() >= max_batch_; });
    }
    while (!pending_.empty()) {
      size_t n = std::min(pending_.size(), max_batch_);
      std::vector<Item> batch(
          std::make_move_iterator(pending_.begin()),
          std::make_move_iterator(pending_.begin() + static_cast<std::ptrdiff_t>(n)));
      pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(n));
      in_flight_ += n;
      lock.unlock();
      Send(std::move(batch));
      lock.lock();
    }
    if (stopping_) return;
  }
}

void CheckInBatcher::Keep(std::vector<Item> items, const absl::Status& why) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    in_flight_ -= items.size();
    if (!stopping_) {
      backoff_ = backoff_ == absl::ZeroDuration() ? kFirstRetry : std::min(2 * backoff_, kMaxRetry);
      if (retry_.empty()) retry_at_ = absl::Now() + backoff_;
      retry_.insert(retry_.end(), std::make_move_iterator(items.begin()),
                    std::make_move_iterator(items.end()));
      if (metrics_.waiting_retry != nullptr) {
        metrics_.waiting_retry->Set(static_cast<double>(retry_.size()));
      }
      items.clear();
    }
    cv_.notify_all();  // under the lock: the destructor may be waiting to free cv_
  }
  for (auto& it : items) it.done(why);  // stopping: answered, not kept
}

void CheckInBatcher::Answered(size_t n, bool recorded) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    in_flight_ -= n;
    if (recorded) backoff_ = absl::ZeroDuration();
    cv_.notify_all();  // under the lock: the destructor may be waiting to free cv_
  }
}

void CheckInBatcher::Send(std::vector<Item> items) {
  struct Call {
    std::unique_ptr<grpc::ClientContext> ctx = BackendContext(absl::Seconds(10));
    v1::RecordCheckInsRequest req;
    v1::RecordCheckInsResponse resp;
    std::vector<Item> items;
  };
  auto* call = new Call;
  call->items = std::move(items);
  for (auto& it : call->items) *call->req.add_check_ins() = it.check_in;
  GatedCall(
      *gate_,
      [this, call](Completion cb) {
        agents_->async()->RecordCheckIns(call->ctx.get(), &call->req, &call->resp, std::move(cb));
      },
      [this, call](const grpc::Status& s) {
        std::unique_ptr<Call> owned(call);
        if (!s.ok() && TransientFailure(s.error_code())) {
          Keep(std::move(owned->items), FromGrpcStatus(s));
          return;
        }
        Answered(owned->items.size(), s.ok());
        bool complete =
            s.ok() && owned->resp.results_size() == static_cast<int>(owned->items.size());
        for (size_t i = 0; i < owned->items.size(); ++i) {
          if (!complete) {
            owned->items[i].done(s.ok() ? absl::InternalError("malformed check-in batch reply")
                                        : FromGrpcStatus(s));
            continue;
          }
          const v1::CheckInResult& r = owned->resp.results(static_cast<int>(i));
          owned->items[i].done(absl::Status(static_cast<absl::StatusCode>(r.code()), r.message()));
        }
      });
}

}  // namespace redflag::gateway
