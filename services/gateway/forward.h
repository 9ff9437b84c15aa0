// Relays one operator unary call to an internal service without blocking: the backend
// call is asynchronous (through the operators' BackendGate) and its completion finishes the server
// reactor. The caller's identity travels in metadata (common/actor.h). Lifetime rule: the client
// context is owned by the completion callback, which deletes it and then finishes the default unary
// reactor; nothing runs after that Finish.
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>

#include "common/actor.h"
#include "common/status.h"
#include "services/gateway/backends.h"

namespace redflag::gateway {

template <typename Req, typename Resp>
using AsyncCall = std::function<void(grpc::ClientContext*, const Req*, Resp*,
                                     std::function<void(const grpc::Status&)>)>;

template <typename Req, typename Resp>
grpc::ServerUnaryReactor* Forward(grpc::CallbackServerContext* ctx, const Req* req, Resp* resp,
                                  const Actor& actor, BackendGate& gate,
                                  const AsyncCall<Req, Resp>& call) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  std::unique_ptr<grpc::ClientContext> client = BackendContext(actor);
  grpc::ClientContext* raw = client.release();
  // The client context lives until the backend call completes; then the reply is sent.
  GatedCall(
      gate, [call, raw, req, resp](Completion cb) { call(raw, req, resp, std::move(cb)); },
      [reactor, raw](const grpc::Status& s) {
        delete raw;
        reactor->Finish(s);
      });
  return reactor;
}

inline grpc::ServerUnaryReactor* Reject(grpc::CallbackServerContext* ctx, const absl::Status& s) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(s));
  return reactor;
}

}  // namespace redflag::gateway
