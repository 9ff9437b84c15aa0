#include "tests/faults/fault_support.h"

#include "absl/strings/numbers.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "tests/support/cluster.h"
#include "tests/support/test_env.h"

namespace redflag::testing {

fleet::FleetOptions FaultFleetOptions(int agents, const std::string& channel_prefix,
                                      const std::string& target) {
  auto& c = Cluster::Get();
  fleet::FleetOptions o;
  o.target = target.empty() ? c.gateway_address() : target;
  o.ca_pem = ReadFile(PkiFile("public-ca.crt"));
  o.run_id = HexEncode(RandomBytes(6));
  o.channel = channel_prefix + "-" + o.run_id;
  o.seats_per_token = agents;
  o.registration_tokens.push_back(c.NewRegistrationToken(agents));
  return o;
}

std::string RecordedStates(const std::string& update_id) {
  auto rows = QueryColumn(
      "SELECT coalesce(string_agg(state || '=' || n, ' ' ORDER BY state), '') FROM "
      "(SELECT state, count(*) AS n FROM updates.deliveries WHERE update_id = $1::uuid "
      "GROUP BY state) s",
      {update_id});
  return rows.empty() ? "" : rows[0];
}

double Metric(int port, const std::string& series) {
  std::string body = HttpGet(port, "/metrics");
  size_t at = body.find("\n" + series + " ");
  if (at == std::string::npos) return 0;
  size_t from = at + series.size() + 2;
  double v = 0;
  (void)absl::SimpleAtod(body.substr(from, body.find('\n', from) - from), &v);
  return v;
}

}  // namespace redflag::testing
