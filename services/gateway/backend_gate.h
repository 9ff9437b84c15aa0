// Caps the gateway's concurrent calls to one backend, so that a fleet-sized burst (a
// publication reaching every stream, a reconnect storm, a hundred downloads) waits here
// instead of exhausting the service's thread pool. At most `max_in_flight` calls run; the
// rest wait in a FIFO of at most `max_queued`. A call that finds the FIFO full is refused at
// once (RESOURCE_EXHAUSTED, counted) and its caller's retry policy applies.
// Thread-safe; Run() never blocks. A queued call is started on the thread that freed its
// slot (a gRPC completion thread), so `start` must not block either.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>

#include "absl/status/status.h"

namespace redflag::gateway {

class BackendGate {
 public:
  // Called once with a slot (`release` must be called exactly once when the call ends),
  // or with a refusal (`release` is then empty).
  using Start = std::function<void(const absl::Status& admitted, std::function<void()> release)>;

  BackendGate(std::string name, size_t max_in_flight, size_t max_queued);
  BackendGate(const BackendGate&) = delete;
  BackendGate& operator=(const BackendGate&) = delete;

  void Run(Start start);

  const std::string& name() const { return name_; }
  size_t in_flight();
  size_t queued();
  uint64_t refused();

 private:
  void Release();

  const std::string name_;
  const size_t max_in_flight_;
  const size_t max_queued_;
  std::mutex mu_;
  size_t in_flight_ = 0;
  uint64_t refused_ = 0;
  std::deque<Start> waiting_;
};

}  // namespace redflag::gateway
