// OperatorService.PublishUpdate: relays an operator's client-streamed package to the
// updates service. Publications are rare and large, so each runs on a worker thread of
// its own (at most kMaxConcurrent at once, others get RESOURCE_EXHAUSTED) that bridges
// the callback reader to a blocking client writer; one chunk is buffered at a time.
//
// Lifetime rule: the worker alone calls Finish, once, after its last StartRead completed or
// the call was cancelled; gRPC then calls OnDone, which deletes the reactor. Reads alternate
// with the worker's writes (the next read starts after the chunk was written), and the slot
// is shared so a worker still unwinding never touches a deleted reactor.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>

#include "common/actor.h"
#include "redflag/v1/gateway.grpc.pb.h"
#include "services/gateway/backends.h"

namespace redflag::gateway {

class PublishRelay final : public grpc::ServerReadReactor<v1::PublishUpdateChunk> {
 public:
  static constexpr int kMaxConcurrent = 4;

  // `actor` is the authenticated operator; the relay starts reading at once.
  PublishRelay(grpc::CallbackServerContext* ctx, v1::Update* resp, Backends& backends, Actor actor);

  void OnReadDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  // What the reactor hands the worker; shared because the worker may outlive the reactor.
  struct Slot {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<v1::PublishUpdateChunk> chunk;
    bool closed = false;
    bool cancelled = false;
  };
  void Work(std::shared_ptr<Slot> slot, v1::Update* resp, Backends* backends, const Actor& actor);

  std::shared_ptr<Slot> slot_ = std::make_shared<Slot>();
  v1::PublishUpdateChunk incoming_;
  static std::atomic<int> running_;
};

}  // namespace redflag::gateway
