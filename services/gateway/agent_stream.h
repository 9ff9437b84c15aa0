// One agent's Connect stream (ServerBidiReactor). It never blocks and never parks a
// thread: backend checks are asynchronous and post their results back; one write is in
// flight at a time with the rest queued. Lifetime is reference-counted: gRPC holds one
// reference until OnDone, each pending backend call holds one, the last one deletes.
#pragma once

#include <grpcpp/grpcpp.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include <atomic>
#include <deque>
#include <mutex>

#include "common/jwt.h"
#include "redflag/v1/gateway.grpc.pb.h"
#include "services/gateway/authn.h"
#include "services/gateway/backends.h"
#include "services/gateway/check_in_batcher.h"
#include "services/gateway/rate_limiter.h"

namespace redflag::gateway {

struct StreamDeps {
  Backends& backends;
  Authenticator& authn;
  CheckInBatcher& batcher;
  EdgeLimits& limits;
  prometheus::Gauge& connected;
  prometheus::Counter& check_ins;
  int check_in_interval_seconds;
};

class AgentStream final : public grpc::ServerBidiReactor<v1::AgentMessage, v1::ServerMessage> {
 public:
  AgentStream(grpc::CallbackServerContext* ctx, StreamDeps deps);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  ~AgentStream() override = default;
  void Ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Unref();

  void HandleHello(const v1::Hello& hello);
  void HandleCheckIn(uint64_t seq, const v1::AgentCheckIn& check_in);
  void Send(v1::ServerMessage msg);
  // Ends the stream once no write is in flight; later calls are ignored.
  void End(const grpc::Status& status);
  void ReadNext();

  grpc::CallbackServerContext* ctx_;
  StreamDeps deps_;
  std::atomic<int> refs_{1};

  // Fixed at stream open.
  JwtClaims claims_;
  std::string machine_id_;
  std::string version_;

  std::mutex mu_;
  bool hello_done_ = false;
  bool writing_ = false;
  bool finish_requested_ = false;
  bool finished_ = false;
  bool done_ = false;
  grpc::Status finish_status_;
  std::deque<v1::ServerMessage> queue_;
  v1::ServerMessage in_flight_;
  v1::AgentMessage incoming_;
  uint64_t next_seq_ = 1;
};

}  // namespace redflag::gateway
