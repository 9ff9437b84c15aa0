#include "services/gateway/check_in_batcher.h"

#include <memory>

#include "common/status.h"
#include "services/gateway/backends.h"

namespace redflag::gateway {

CheckInBatcher::CheckInBatcher(v1::AgentsService::Stub* agents, BackendGate* gate,
                               absl::Duration max_delay, size_t max_batch)
    : agents_(agents), gate_(gate), max_delay_(max_delay), max_batch_(max_batch), thread_([this] {
        Loop();
      }) {}

CheckInBatcher::~CheckInBatcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void CheckInBatcher::Submit(v1::CheckIn check_in, Done done) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.push_back({std::move(check_in), std::move(done)});
    // The first item starts the batch's delay clock; a full batch leaves at once.
    wake = pending_.size() == 1 || pending_.size() >= max_batch_;
  }
  if (wake) cv_.notify_one();
}

void CheckInBatcher::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
    if (!stopping_ && pending_.size() < max_batch_) {
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
      lock.unlock();
      Send(std::move(batch));
      lock.lock();
    }
    if (stopping_) return;
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
      [call](const grpc::Status& s) {
        std::unique_ptr<Call> owned(call);
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
