#include "tools/fleet/operator_client.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status.h"
#include "common/tls.h"

namespace redflag::fleet {
namespace {

absl::Status Named(const char* call, const grpc::Status& s) {
  absl::Status st = FromGrpcStatus(s);
  return absl::Status(st.code(), absl::StrCat(call, ": ", st.message()));
}

}  // namespace

OperatorClient::OperatorClient(const std::string& target, const std::string& ca_pem,
                               const std::string& authority)
    : stub_(v1::OperatorService::NewStub(
          MakeChannel(target, TlsChannelCredentials(ca_pem), authority))) {}

std::unique_ptr<grpc::ClientContext> OperatorClient::Context() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  if (!token_.empty()) ctx->AddMetadata("authorization", absl::StrCat("Bearer ", token_));
  return ctx;
}

absl::Status OperatorClient::Login(const std::string& username, const std::string& password) {
  v1::LoginRequest req;
  req.set_username(username);
  req.set_password(password);
  v1::TokenPair resp;
  auto ctx = Context();
  grpc::Status s = stub_->Login(ctx.get(), req, &resp);
  if (!s.ok()) return Named("Login", s);
  token_ = resp.access_token();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> OperatorClient::CreateTokens(int agents,
                                                                      int seats_per_token) {
  std::vector<std::string> out;
  for (int have = 0; have < agents; have += seats_per_token) {
    v1::CreateRegistrationTokenRequest req;
    req.set_seats(seats_per_token);
    req.set_label("fleet");
    v1::CreateRegistrationTokenResponse resp;
    auto ctx = Context();
    grpc::Status s = stub_->CreateRegistrationToken(ctx.get(), req, &resp);
    if (!s.ok()) return Named("CreateRegistrationToken", s);
    out.push_back(resp.secret());
  }
  return out;
}

absl::StatusOr<v1::Update> OperatorClient::Publish(const std::string& name,
                                                   const std::string& version,
                                                   const std::string& platform,
                                                   const std::string& channel,
                                                   const std::string& bytes, v1::UpdateKind kind,
                                                   const v1::RolloutPlan* rollout) {
  auto ctx = Context();
  v1::Update resp;
  auto writer = stub_->PublishUpdate(ctx.get(), &resp);
  v1::PublishUpdateChunk header;
  v1::PublishUpdateChunk::Header* h = header.mutable_header();
  h->set_name(name);
  h->set_version(version);
  h->set_platform(platform);
  h->set_channel(channel);
  h->set_kind(kind);
  h->set_size(static_cast<int64_t>(bytes.size()));
  if (rollout != nullptr) *h->mutable_rollout() = *rollout;
  bool ok = writer->Write(header);
  constexpr size_t kChunk = size_t{64} * 1024;
  for (size_t off = 0; ok && off < bytes.size(); off += kChunk) {
    v1::PublishUpdateChunk data;
    data.set_data(bytes.substr(off, kChunk));
    ok = writer->Write(data);
  }
  writer->WritesDone();
  grpc::Status s = writer->Finish();
  if (!s.ok()) return Named("PublishUpdate", s);
  return resp;
}

absl::StatusOr<std::map<std::string, int64_t>> OperatorClient::DeliveryCounts(
    const std::string& update_id) {
  v1::ListDeliveriesRequest req;
  req.set_update_id(update_id);
  req.set_page_size(1);  // the counts cover every delivery; the rows are not needed
  v1::ListDeliveriesResponse resp;
  auto ctx = Context();
  grpc::Status s = stub_->ListDeliveries(ctx.get(), req, &resp);
  if (!s.ok()) return Named("ListDeliveries", s);
  return std::map<std::string, int64_t>(resp.counts().begin(), resp.counts().end());
}

}  // namespace redflag::fleet
