// The operators' security overview and audit-trail listing through the gateway.
#include <catch2/catch.hpp>

#include "tests/support/cluster.h"
#include "tests/support/test_env.h"

using namespace redflag;
using namespace redflag::testing;

TEST_CASE("the security overview reports keys, violations and alerts to a viewer",
          "[e2e][overview]") {
  auto& c = Cluster::Get();
  // Cause what the overview must show: a binding violation and a non-compliant agent.
  std::string machine = RandomMachineId();
  v1::RegisterResponse reg;
  REQUIRE(RegisterAgent(c.NewRegistrationToken(1), machine, "0.2.0", &reg).ok());
  REQUIRE(OpenStream(reg.agent_id(), reg.credentials().access_token(), RandomMachineId(), "0.2.0")
              .error_code() == grpc::StatusCode::PERMISSION_DENIED);

  std::string viewer = c.NewUser("overview-" + reg.agent_id().substr(0, 8), v1::VIEWER);
  grpc::ClientContext ctx;
  Cluster::Authorize(ctx, viewer);
  v1::SecurityOverview o;
  grpc::Status s = c.Operator()->GetSecurityOverview(&ctx, {}, &o);
  REQUIRE(s.error_message() == "");
  CHECK(o.signing_enabled());
  REQUIRE(o.signing_keys_size() >= 1);
  CHECK(o.signing_keys(0).key_id().size() == 16);
  CHECK(o.nonce_validation_enabled());
  CHECK(o.binding_violations() >= 1);
  CHECK(o.non_compliant_agents() >= 1);
  bool binding_alert = false;
  for (const auto& a : o.alerts()) binding_alert |= a.find("machine binding") != std::string::npos;
  CHECK(binding_alert);

  grpc::ClientContext lctx;
  Cluster::Authorize(lctx, viewer);
  v1::ListSecurityEventsRequest req;
  req.set_type("MACHINE_ID_MISMATCH");
  req.set_page_size(5);
  v1::ListSecurityEventsResponse events;
  REQUIRE(c.Operator()->ListSecurityEvents(&lctx, req, &events).ok());
  REQUIRE(events.events_size() >= 1);
  CHECK(events.events(0).actor() == reg.agent_id());  // newest first
  CHECK(events.events(0).hash().size() == 64);
  CHECK(events.events(0).service() == "redflag-agents");
}

TEST_CASE("the overview requires a token", "[e2e][overview]") {
  grpc::ClientContext ctx;
  v1::SecurityOverview o;
  CHECK(Cluster::Get().Operator()->GetSecurityOverview(&ctx, {}, &o).error_code() ==
        grpc::StatusCode::UNAUTHENTICATED);
}
