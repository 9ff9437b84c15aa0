// The few operator calls a fleet scenario needs, made synchronously through the gateway
// like redflagctl does: log in, create registration tokens, publish a package, read a
// rollout's counts. Errors are statuses naming the call.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "redflag/v1/gateway.grpc.pb.h"

namespace redflag::fleet {

class OperatorClient {
 public:
  OperatorClient(const std::string& target, const std::string& ca_pem,
                 const std::string& authority = "");

  absl::Status Login(const std::string& username, const std::string& password);
  // Uses an access token obtained elsewhere.
  void UseToken(std::string access_token) { token_ = std::move(access_token); }
  // Enough tokens of `seats_per_token` seats for `agents` registrations.
  absl::StatusOr<std::vector<std::string>> CreateTokens(int agents, int seats_per_token);
  // Publishes `bytes` as an update of `kind` (a package, or a new agent binary), staged by
  // `rollout` when set; the reply is the stored update.
  absl::StatusOr<v1::Update> Publish(const std::string& name, const std::string& version,
                                     const std::string& platform, const std::string& channel,
                                     const std::string& bytes, v1::UpdateKind kind = v1::PACKAGE,
                                     const v1::RolloutPlan* rollout = nullptr);
  // Deliveries of an update: counts by state name.
  absl::StatusOr<std::map<std::string, int64_t>> DeliveryCounts(const std::string& update_id);

 private:
  std::unique_ptr<grpc::ClientContext> Context();
  std::unique_ptr<v1::OperatorService::Stub> stub_;
  std::string token_;
};

}  // namespace redflag::fleet
