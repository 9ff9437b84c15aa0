#include "services/gateway/backend_flow.h"

#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace redflag::gateway {

BackendFlow::BackendFlow(grpc::CallbackServerContext* ctx, Backends& backends, Actor actor)
    : b_(backends), actor_(std::move(actor)), reactor_(ctx->DefaultReactor()) {
  contexts_.reserve(4);
}

grpc::ClientContext* BackendFlow::NextContext() {
  // The vector owns the contexts; the pointers stay valid when it grows.
  contexts_.push_back(BackendContext(actor_));
  return contexts_.back().get();
}

void BackendFlow::Done(const grpc::Status& s) {
  reactor_->Finish(s);
  delete this;
}

void BackendFlow::ReleaseSeatThenFail(const std::string& seat_id, const grpc::Status& failure) {
  failure_ = failure;
  release_req_.set_seat_id(seat_id);
  GatedCall(
      *b_.auth_gate,
      [this, ctx = NextContext()](Completion cb) {
        b_.auth->async()->ReleaseRegistrationSeat(ctx, &release_req_, &release_resp_,
                                                  std::move(cb));
      },
      [this](const grpc::Status& s) {
        if (!s.ok()) LogWarn(absl::StrCat("seat not released: ", s.error_message()));
        Done(failure_);
      });
}

}  // namespace redflag::gateway
