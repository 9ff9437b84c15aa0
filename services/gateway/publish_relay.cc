#include "services/gateway/publish_relay.h"

#include <thread>

namespace redflag::gateway {

std::atomic<int> PublishRelay::running_{0};

PublishRelay::PublishRelay(grpc::CallbackServerContext* ctx, v1::Update* resp, Backends& backends,
                           Actor actor) {
  if (running_.fetch_add(1) >= kMaxConcurrent) {
    running_.fetch_sub(1);
    Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "too many publications in progress; retry shortly"));
    return;
  }
  std::thread([this, slot = slot_, resp, b = &backends, actor = std::move(actor)] {
    Work(slot, resp, b, actor);
  }).detach();
  StartRead(&incoming_);
}

void PublishRelay::OnReadDone(bool ok) {
  {
    std::lock_guard<std::mutex> lock(slot_->mu);
    if (ok) {
      slot_->chunk = std::move(incoming_);
    } else {
      slot_->closed = true;
    }
  }
  slot_->cv.notify_one();
}

void PublishRelay::OnCancel() {
  {
    std::lock_guard<std::mutex> lock(slot_->mu);
    slot_->cancelled = true;
  }
  slot_->cv.notify_one();
}

void PublishRelay::OnDone() { delete this; }

void PublishRelay::Work(std::shared_ptr<Slot> slot, v1::Update* resp, Backends* backends,
                        const Actor& actor) {
  grpc::ClientContext ctx;
  AttachActor(ctx, actor);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::hours(1));
  auto writer = backends->updates->PublishUpdate(&ctx, resp);
  while (true) {
    std::optional<v1::PublishUpdateChunk> chunk;
    {
      std::unique_lock<std::mutex> lock(slot->mu);
      slot->cv.wait(lock, [&] { return slot->chunk || slot->closed || slot->cancelled; });
      if (slot->cancelled) {
        ctx.TryCancel();
        break;
      }
      if (!slot->chunk) break;  // closed: the operator finished sending
      chunk = std::move(slot->chunk);
      slot->chunk.reset();
    }
    // A refused write means the backend has ended the call: stop reading, report its status.
    if (!writer->Write(*chunk)) break;
    StartRead(&incoming_);  // the reactor lives until Finish below
  }
  writer->WritesDone();
  grpc::Status s = writer->Finish();
  running_.fetch_sub(1);
  Finish(s);  // after this the reactor may be gone: touch nothing of it
}

}  // namespace redflag::gateway
