// redflagctl: a minimal operator client for the gateway (what grpcurl does, without it).
//   redflagctl [--server H:P] [--ca-file F] COMMAND
//   login                         prints an access token (password from REDFLAG_ADMIN_PASSWORD)
//   create-token SEATS [LABEL]    prints the registration token secret (needs REDFLAG_TOKEN)
//   list-agents | list-tokens | signing-keys   print JSON (need REDFLAG_TOKEN)
//   revoke-key KEY_ID REASON      withdraws a leaked signing key from the ring and every agent
//   verify-audit [FROM [TO]]      verifies the audit trail's hash chain; exit 3 if broken
#include <google/protobuf/util/json_util.h>

#include <cstdio>
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/config.h"
#include "common/tls.h"
#include "redflag/v1/gateway.grpc.pb.h"

ABSL_FLAG(std::string, server, "localhost:8443", "gateway address");
ABSL_FLAG(std::string, ca_file, ".dev/pki/public-ca.crt", "CA of the gateway's certificate");
ABSL_FLAG(std::string, user, "admin", "operator username for login");

namespace {

using redflag::v1::OperatorService;

int Fail(const std::string& what, const grpc::Status& s) {
  std::fprintf(stderr, "%s failed: %s: %s\n", what.c_str(),
               std::to_string(static_cast<int>(s.error_code())).c_str(), s.error_message().c_str());
  return 1;
}

void Print(const google::protobuf::Message& m) {
  std::string json;
  google::protobuf::util::JsonPrintOptions o;
  o.add_whitespace = true;
  (void)google::protobuf::util::MessageToJsonString(m, &json, o);
  std::cout << json;
}

void Authorize(grpc::ClientContext& ctx) {
  ctx.AddMetadata("authorization",
                  absl::StrCat("Bearer ", redflag::Env::Optional("REDFLAG_TOKEN", "")));
}

// Fetches every page of a list RPC (1000 items per call) and prints them as one reply: the
// repeated fields appended, the last page's counts kept.
template <typename Req, typename Resp, typename Call>
int PrintAllPages(const char* name, Call call) {
  Resp all;
  Req req;
  req.set_page_size(1000);
  do {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    Authorize(ctx);
    Resp page;
    grpc::Status s = call(&ctx, req, &page);
    if (!s.ok()) return Fail(name, s);
    all.MergeFrom(page);
    req.set_page_token(page.next_page_token());
  } while (!req.page_token().empty());
  all.clear_next_page_token();
  Print(all);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() < 2) {
    std::fprintf(stderr,
                 "usage: redflagctl login|create-token SEATS "
                 "[LABEL]|list-agents|list-tokens|signing-keys|revoke-key KEY_ID "
                 "REASON|verify-audit [FROM [TO]]\n");
    return 2;
  }
  absl::StatusOr<std::string> ca =
      redflag::ReadPemFile(absl::GetFlag(FLAGS_ca_file), "CA certificate");
  if (!ca.ok()) {
    std::fprintf(stderr, "%s\n", ca.status().ToString().c_str());
    return 2;
  }
  auto stub = OperatorService::NewStub(
      redflag::MakeChannel(absl::GetFlag(FLAGS_server), redflag::TlsChannelCredentials(*ca)));
  std::string cmd = args[1];
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  if (cmd == "login") {
    redflag::v1::LoginRequest req;
    req.set_username(absl::GetFlag(FLAGS_user));
    req.set_password(redflag::Env::Optional("REDFLAG_ADMIN_PASSWORD", ""));
    redflag::v1::TokenPair resp;
    grpc::Status s = stub->Login(&ctx, req, &resp);
    if (!s.ok()) return Fail("login", s);
    std::cout << resp.access_token() << "\n";
    return 0;
  }
  Authorize(ctx);
  if (cmd == "create-token") {
    redflag::v1::CreateRegistrationTokenRequest req;
    int seats = 1;
    if (args.size() < 3 || !absl::SimpleAtoi(args[2], &seats)) {
      std::fprintf(stderr, "create-token needs a seat count\n");
      return 2;
    }
    req.set_seats(seats);
    req.set_label(args.size() > 3 ? args[3] : "redflagctl");
    redflag::v1::CreateRegistrationTokenResponse resp;
    grpc::Status s = stub->CreateRegistrationToken(&ctx, req, &resp);
    if (!s.ok()) return Fail("create-token", s);
    std::cout << resp.secret() << "\n";
    return 0;
  }
  if (cmd == "list-agents") {
    return PrintAllPages<redflag::v1::ListAgentsRequest, redflag::v1::ListAgentsResponse>(
        "list-agents", [&](grpc::ClientContext* c, const auto& req, auto* resp) {
          return stub->ListAgents(c, req, resp);
        });
  }
  if (cmd == "list-tokens") {
    return PrintAllPages<redflag::v1::ListRegistrationTokensRequest,
                         redflag::v1::ListRegistrationTokensResponse>(
        "list-tokens", [&](grpc::ClientContext* c, const auto& req, auto* resp) {
          return stub->ListRegistrationTokens(c, req, resp);
        });
  }
  if (cmd == "signing-keys") {
    redflag::v1::ListSigningKeysResponse resp;
    grpc::Status s = stub->ListSigningKeys(&ctx, {}, &resp);
    if (!s.ok()) return Fail("signing-keys", s);
    Print(resp);
    return 0;
  }
  if (cmd == "verify-audit") {
    redflag::v1::VerifyAuditTrailRequest req;
    int64_t from = 0, to = 0;
    if ((args.size() > 2 && !absl::SimpleAtoi(args[2], &from)) ||
        (args.size() > 3 && !absl::SimpleAtoi(args[3], &to))) {
      std::fprintf(stderr, "verify-audit takes optional numeric event ids FROM and TO\n");
      return 2;
    }
    req.set_from_id(from);
    req.set_to_id(to);
    redflag::v1::AuditVerification resp;
    grpc::Status s = stub->VerifyAuditTrail(&ctx, req, &resp);
    if (!s.ok()) return Fail("verify-audit", s);
    Print(resp);
    return resp.intact() ? 0 : 3;
  }
  if (cmd == "revoke-key") {
    if (args.size() < 4) {
      std::fprintf(stderr, "revoke-key needs a key id and a reason\n");
      return 2;
    }
    redflag::v1::RevokeSigningKeyRequest req;
    req.set_key_id(args[2]);
    req.set_reason(args[3]);
    redflag::v1::SigningKey resp;
    grpc::Status s = stub->RevokeSigningKey(&ctx, req, &resp);
    if (!s.ok()) return Fail("revoke-key", s);
    Print(resp);
    return 0;
  }
  std::fprintf(stderr, "unknown command %s\n", cmd.c_str());
  return 2;
}
