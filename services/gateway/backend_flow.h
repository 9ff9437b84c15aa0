// The frame every multi-step gateway call shares: a server unary reactor finished exactly
// once, backend calls made on behalf of one actor (each with its own client context, kept
// alive until the end), and giving back a consumed registration seat when a later step fails.
// A flow is heap-allocated, drives itself through asynchronous callbacks and deletes itself
// in Done(); Start() functions read reactor() before issuing their first call.
//
// Lifetime rule: exactly one backend call is outstanding at a time and each completion
// either starts the next or calls Done(), which finishes the unary reactor and deletes the
// flow — so nothing of the flow is touched after Done(), and the server call's OnDone (the
// default reactor's) needs nothing from it.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "common/actor.h"
#include "services/gateway/backends.h"

namespace redflag::gateway {

class BackendFlow {
 protected:
  BackendFlow(grpc::CallbackServerContext* ctx, Backends& backends, Actor actor);
  virtual ~BackendFlow() = default;

  grpc::ServerUnaryReactor* reactor() const { return reactor_; }
  // A fresh context for the next backend call; valid until Done().
  grpc::ClientContext* NextContext();
  // Finishes the server call with `s` and deletes the flow.
  void Done(const grpc::Status& s);
  // Gives the seat back (a failure to do so is logged), then finishes with `failure`.
  void ReleaseSeatThenFail(const std::string& seat_id, const grpc::Status& failure);

  Backends& b_;
  const Actor actor_;

 private:
  grpc::ServerUnaryReactor* reactor_;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts_;
  v1::ReleaseRegistrationSeatRequest release_req_;
  v1::LogoutResponse release_resp_;
  grpc::Status failure_;
};

}  // namespace redflag::gateway
