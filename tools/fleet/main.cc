// redflag-fleet: the fleet benchmark. Plays N agents against a running RedFlag (each on its
// own TLS connection, speaking the real protocol) and measures one scenario:
//   hold    connect and check-in latency, gateway RSS per connected agent, CPU
//   fanout  publish → offer verified → downloaded → INSTALLED reported, server-side counts
//   storm   kill -9 + restart of the gateway (--restart_cmd): time until 50/99/100 % are back
//   rate    check-ins per second through the full path vs a raw TLS bidi echo server
//   sign    offers issued per second by the updates service vs raw crypto_sign_detached
//   soak    RSS and CPU of every process every 10 s for --minutes
// Prints a table and writes JSON under --results_dir. scripts/bench.sh runs it.
#include <sodium.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "common/process.h"
#include "common/tls.h"
#include "redflag/v1/updates.grpc.pb.h"
#include "tools/fleet/echo_server.h"
#include "tools/fleet/fleet.h"
#include "tools/fleet/operator_client.h"
#include "tools/fleet/proc_stats.h"

ABSL_FLAG(std::string, scenario, "hold", "hold | fanout | storm | rate | sign | soak");
ABSL_FLAG(int, agents, 100, "simulated agents");
ABSL_FLAG(std::string, target, "localhost:8443", "gateway address(es), comma-separated");
ABSL_FLAG(std::string, ca_file, "", "CA of the gateway's certificate");
ABSL_FLAG(std::string, admin_user, "admin", "operator account for publications and tokens");
ABSL_FLAG(std::string, pids, "", "processes to sample: name=pid,name=pid (gateway first)");
ABSL_FLAG(std::string, restart_cmd, "", "storm: command that kills -9 and restarts the gateway");
ABSL_FLAG(int, ramp_seconds, 10, "spread agent starts over this long");
ABSL_FLAG(int, seats_per_token, 50, "seats per registration token (auth's REDFLAG_MAX_SEATS)");
ABSL_FLAG(int, minutes, 10, "soak: duration");
ABSL_FLAG(int, seconds, 10, "rate and sign: measuring window");
ABSL_FLAG(int, package_kib, 100, "fanout: package size");
ABSL_FLAG(std::string, results_dir, "bench/results", "where JSON results go");
ABSL_FLAG(std::string, machine, "", "description of the machine, recorded with the results");
ABSL_FLAG(std::string, echo_cert_file, "", "rate: certificate for the echo baseline");
ABSL_FLAG(std::string, echo_key_file, "", "rate: key for the echo baseline");
ABSL_FLAG(std::string, updates_addr, "", "sign: the updates service (mTLS, gateway identity)");
ABSL_FLAG(std::string, internal_ca_file, "", "sign: internal CA");
ABSL_FLAG(std::string, internal_cert_file, "", "sign: gateway client certificate");
ABSL_FLAG(std::string, internal_key_file, "", "sign: gateway client key");

namespace {

using namespace redflag;
using namespace redflag::fleet;

// A result: ordered key/values printed as a table and written as flat JSON.
class Result {
 public:
  explicit Result(std::string scenario) : scenario_(std::move(scenario)) {
    Set("scenario", scenario_);
    Set("machine", absl::GetFlag(FLAGS_machine));
    Set("started_at", absl::FormatTime(absl::Now(), absl::UTCTimeZone()));
  }
  void Set(const std::string& k, const std::string& v) { rows_.emplace_back(k, JsonQuote(v)); }
  void Set(const std::string& k, double v) { rows_.emplace_back(k, absl::StrFormat("%.3f", v)); }
  void Set(const std::string& k, int64_t v) { rows_.emplace_back(k, absl::StrCat(v)); }
  void Set(const std::string& k, int v) { Set(k, static_cast<int64_t>(v)); }
  void Latency(const std::string& k, const std::vector<double>& ms) {
    Percentiles p = Summarise(ms);
    Set(k + "_count", static_cast<int64_t>(p.count));
    Set(k + "_p50_ms", p.p50);
    Set(k + "_p95_ms", p.p95);
    Set(k + "_p99_ms", p.p99);
    Set(k + "_max_ms", p.max);
  }
  void Errors(FleetStats& stats) {
    int64_t total = 0;
    for (const auto& [what, n] : stats.Errors()) {
      Set("errors." + what, n);
      total += n;
    }
    Set("errors_total", total);
  }
  void Write(int agents) {
    std::cout << "\n== " << scenario_;
    if (agents >= 0) std::cout << " (" << agents << " agents)";
    std::cout << " ==\n";
    for (const auto& [k, v] : rows_) std::cout << absl::StrFormat("  %-40s %s\n", k, v);
    std::string dir = absl::GetFlag(FLAGS_results_dir);
    size_t gateways =
        std::vector<std::string>(absl::StrSplit(absl::GetFlag(FLAGS_target), ',')).size();
    Set("gateways", static_cast<int64_t>(gateways));
    // Scenarios without a fleet (sign) pass agents < 0.
    std::string path =
        absl::StrCat(dir, "/", scenario_, agents >= 0 ? absl::StrCat("-", agents) : "",
                     gateways > 1 ? absl::StrCat("-", gateways, "gw") : "", ".json");
    std::ofstream out(path);
    out << "{\n";
    for (size_t i = 0; i < rows_.size(); ++i) {
      out << "  " << JsonQuote(rows_[i].first) << ": " << rows_[i].second
          << (i + 1 < rows_.size() ? ",\n" : "\n");
    }
    out << "}\n";
    std::cout << "  -> " << path << "\n";
  }

 private:
  static std::string JsonQuote(const std::string& s) {
    std::string o = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\') o += '\\';
      if (static_cast<unsigned char>(c) < 0x20) {
        o += absl::StrFormat("\\u%04x", c);
        continue;
      }
      o += c;
    }
    return o + "\"";
  }
  std::string scenario_;
  std::vector<std::pair<std::string, std::string>> rows_;
};

std::vector<std::pair<std::string, pid_t>> Pids() {
  std::vector<std::pair<std::string, pid_t>> out;
  for (absl::string_view kv : absl::StrSplit(absl::GetFlag(FLAGS_pids), ',', absl::SkipEmpty())) {
    std::pair<std::string, std::string> p = absl::StrSplit(kv, '=');
    int pid = 0;
    if (absl::SimpleAtoi(p.second, &pid)) out.emplace_back(p.first, pid);
  }
  return out;
}

pid_t PidOf(const std::string& name) {
  for (const auto& [n, pid] : Pids()) {
    if (n == name) return pid;
  }
  return 0;
}

[[noreturn]] void Die(const std::string& why) {
  std::cerr << "redflag-fleet: " << why << "\n";
  std::exit(1);
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  if (!in) Die("cannot read " + path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

FleetOptions BaseOptions(OperatorClient& op, int agents) {
  FleetOptions o;
  o.target = absl::GetFlag(FLAGS_target);
  o.ca_pem = ReadAll(absl::GetFlag(FLAGS_ca_file));
  o.run_id = HexEncode(RandomBytes(6));
  o.channel = "bench-" + o.run_id;
  o.seats_per_token = absl::GetFlag(FLAGS_seats_per_token);
  absl::StatusOr<std::vector<std::string>> tokens = op.CreateTokens(agents, o.seats_per_token);
  if (!tokens.ok()) Die(tokens.status().ToString());
  o.registration_tokens = *tokens;
  return o;
}

void SelfCost(Result& r, const ProcSample& before, int agents) {
  std::optional<ProcSample> now = SampleProcess(getpid());
  if (!now) return;
  r.Set("fleet_tool_rss_kib", now->rss_kib);
  r.Set("fleet_tool_rss_kib_per_agent", (now->rss_kib - before.rss_kib) / std::max(1, agents));
}

bool ConnectAll(Fleet& f, int n, Result& r) {
  absl::Time t0 = absl::Now();
  f.Start(n, absl::Seconds(absl::GetFlag(FLAGS_ramp_seconds)));
  bool ok = f.WaitConnected(n, absl::Seconds(absl::GetFlag(FLAGS_ramp_seconds) + 240));
  r.Set("connected", f.ConnectedSince());
  r.Set("all_connected_after_s", absl::ToDoubleSeconds(absl::Now() - t0));
  return ok;
}

int Hold(OperatorClient& op, int n) {
  Result r("hold");
  std::optional<ProcSample> self0 = SampleProcess(getpid());
  pid_t gw = PidOf("gateway");
  std::optional<ProcSample> gw0 = gw ? SampleProcess(gw) : std::nullopt;
  Fleet f(BaseOptions(op, n));
  bool ok = ConnectAll(f, n, r);
  // Let every agent check in a few times (the bench suite asks for a 5 s interval).
  f.stats().ClearSamples("check_in_ack");
  std::optional<ProcSample> gw1 = gw ? SampleProcess(gw) : std::nullopt;
  std::optional<ProcSample> me1 = SampleProcess(getpid());
  absl::SleepFor(absl::Seconds(20));
  std::optional<ProcSample> gw2 = gw ? SampleProcess(gw) : std::nullopt;
  std::optional<ProcSample> me2 = SampleProcess(getpid());
  r.Latency("connect", f.stats().Samples("connect"));
  r.Latency("check_in_ack", f.stats().Samples("check_in_ack"));
  r.Errors(f.stats());
  if (gw0 && gw2) {
    r.Set("gateway_rss_kib_before", gw0->rss_kib);
    r.Set("gateway_rss_kib_connected", gw2->rss_kib);
    r.Set("gateway_rss_kib_per_agent", (gw2->rss_kib - gw0->rss_kib) / n);
    r.Set("gateway_cores_while_holding", CoresBetween(*gw1, *gw2));
  }
  if (me1 && me2) r.Set("fleet_tool_cores_while_holding", CoresBetween(*me1, *me2));
  if (self0) SelfCost(r, *self0, n);
  r.Write(n);
  return ok ? 0 : 2;
}

int Fanout(OperatorClient& op, int n) {
  Result r("fanout");
  FleetOptions o = BaseOptions(op, n);
  std::string channel = o.channel;
  Fleet f(std::move(o));
  bool ok = ConnectAll(f, n, r);
  std::string bytes = RandomBytes(static_cast<size_t>(absl::GetFlag(FLAGS_package_kib)) * 1024);
  r.Set("package_bytes", static_cast<int64_t>(bytes.size()));
  absl::StatusOr<v1::Update> u = op.Publish("bench-tool", "1.0.0", "Linux-x86_64", channel, bytes);
  absl::Time published = absl::Now();
  if (!u.ok()) Die(u.status().ToString());
  const std::string id = u->manifest().update_id();
  absl::Time deadline = absl::Now() + absl::Seconds(300);
  while (static_cast<int>(f.stats().Deliveries(id).size()) < n && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  std::vector<double> offered, downloaded, installed;
  int failed = 0;
  for (const auto& [agent, t] : f.stats().Deliveries(id)) {
    if (!t.failure.empty()) {
      ++failed;
      continue;
    }
    offered.push_back(absl::ToDoubleMilliseconds(t.offer_verified - published));
    downloaded.push_back(absl::ToDoubleMilliseconds(t.downloaded - published));
    installed.push_back(absl::ToDoubleMilliseconds(t.installed_reported - published));
  }
  r.Latency("publish_to_offer_verified", offered);
  r.Latency("publish_to_downloaded", downloaded);
  r.Latency("publish_to_installed_reported", installed);
  r.Set("agents_failed", failed);
  // The server's view: exactly n INSTALLED once the reports are forwarded.
  std::map<std::string, int64_t> counts;
  deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    absl::StatusOr<std::map<std::string, int64_t>> c = op.DeliveryCounts(id);
    if (c.ok()) counts = *c;
    if (counts["INSTALLED"] == n) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  for (const auto& [state, count] : counts) r.Set("server_deliveries." + state, count);
  r.Set("server_recorded_exactly_n_installs",
        std::string(counts["INSTALLED"] == n && counts.size() == 1 ? "yes" : "no"));
  r.Errors(f.stats());
  r.Write(n);
  return ok && counts["INSTALLED"] == n ? 0 : 2;
}

int Storm(OperatorClient& op, int n) {
  Result r("storm");
  std::string cmd = absl::GetFlag(FLAGS_restart_cmd);
  if (cmd.empty()) Die("storm needs --restart_cmd");
  Fleet f(BaseOptions(op, n));
  bool ok = ConnectAll(f, n, r);
  f.stats().ClearErrors();
  absl::Time killed = absl::Now();
  if (std::system(cmd.c_str()) != 0) Die("restart command failed: " + cmd);
  absl::Time restarted = absl::Now();
  r.Set("restart_took_s", absl::ToDoubleSeconds(restarted - killed));
  std::map<int, double> reached;  // percent -> seconds after the restart
  absl::Time deadline = restarted + absl::Seconds(300);
  while (absl::Now() < deadline) {
    int back = f.ConnectedSince(killed);
    for (int pct : {50, 99, 100}) {
      if (!reached.count(pct) && back * 100 >= pct * n) {
        reached[pct] = absl::ToDoubleSeconds(absl::Now() - restarted);
      }
    }
    if (back == n) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  for (int pct : {50, 99, 100}) {
    r.Set(absl::StrCat("back_", pct, "pct_after_restart_s"),
          reached.count(pct) ? reached[pct] : -1.0);
  }
  r.Set("back_total", f.ConnectedSince(killed));
  r.Errors(f.stats());
  r.Write(n);
  return ok && reached.count(100) ? 0 : 2;
}

// Check-ins acknowledged per second over the window, each agent keeping one in flight.
double FloodRate(Fleet& f, int seconds) {
  f.stats().ClearSamples("check_in_ack");
  absl::SleepFor(absl::Seconds(seconds));
  return static_cast<double>(f.stats().Samples("check_in_ack").size()) / seconds;
}

int Rate(OperatorClient& op, int n) {
  Result r("rate");
  int seconds = absl::GetFlag(FLAGS_seconds);
  double full = 0, raw = 0;
  {
    FleetOptions o = BaseOptions(op, n);
    o.flood_check_ins = true;
    Fleet f(std::move(o));
    if (!ConnectAll(f, n, r)) Die("not every agent connected");
    absl::SleepFor(absl::Seconds(2));  // warm-up
    full = FloodRate(f, seconds);
    r.Latency("full_path_check_in_ack", f.stats().Samples("check_in_ack"));
    r.Errors(f.stats());
  }
  {
    TlsFiles files;
    files.ca_file = absl::GetFlag(FLAGS_ca_file);
    files.cert_file = absl::GetFlag(FLAGS_echo_cert_file);
    files.key_file = absl::GetFlag(FLAGS_echo_key_file);
    absl::StatusOr<TlsMaterial> tls = TlsMaterial::Load(files);
    if (!tls.ok()) Die(tls.status().ToString());
    absl::StatusOr<std::unique_ptr<EchoServer>> echo = EchoServer::Start(*tls);
    if (!echo.ok()) Die(echo.status().ToString());
    FleetOptions o;
    o.target = absl::StrCat("localhost:", (*echo)->port());
    o.ca_pem = ReadAll(absl::GetFlag(FLAGS_ca_file));
    o.registration_tokens = {"echo"};
    o.seats_per_token = n;
    o.flood_check_ins = true;
    Fleet f(std::move(o));
    f.Start(n, absl::Seconds(absl::GetFlag(FLAGS_ramp_seconds)));
    if (!f.WaitConnected(n, absl::Seconds(120))) Die("echo: not every agent connected");
    absl::SleepFor(absl::Seconds(2));
    raw = FloodRate(f, seconds);
    r.Latency("echo_check_in_ack", f.stats().Samples("check_in_ack"));
  }
  r.Set("full_path_check_ins_per_s", full);
  r.Set("raw_echo_check_ins_per_s", raw);
  r.Set("ratio_full_to_raw", raw > 0 ? full / raw : 0.0);
  r.Write(n);
  return 0;
}

int Sign(OperatorClient& op) {
  Result r("sign");
  int seconds = absl::GetFlag(FLAGS_seconds);
  TlsFiles files;
  files.ca_file = absl::GetFlag(FLAGS_internal_ca_file);
  files.cert_file = absl::GetFlag(FLAGS_internal_cert_file);
  files.key_file = absl::GetFlag(FLAGS_internal_key_file);
  absl::StatusOr<TlsMaterial> tls = TlsMaterial::Load(files);
  if (!tls.ok()) Die(tls.status().ToString());
  auto stub = v1::UpdatesService::NewStub(
      MakeChannel(absl::GetFlag(FLAGS_updates_addr), MutualTlsChannelCredentials(*tls)));
  std::string run = HexEncode(RandomBytes(6));
  std::string channel = "sign-" + run;
  absl::StatusOr<v1::Update> u =
      op.Publish("bench-sign", "1.0.0", "bench-sign", channel, RandomBytes(1024));
  if (!u.ok()) Die(u.status().ToString());
  // Offers issued by the updates service: each PendingInstructions call for a fresh agent
  // id creates that agent's delivery and signs its offer (fresh nonce), as on connect.
  std::atomic<int64_t> issued{0};
  std::atomic<int64_t> failures{0};
  std::atomic<int> next{0};
  std::atomic<size_t> envelope_bytes{0};
  absl::Time end = absl::Now() + absl::Seconds(seconds);
  constexpr int kCallers = 16;
  std::vector<std::thread> callers;
  callers.reserve(kCallers);
  for (int t = 0; t < kCallers; ++t) {
    callers.emplace_back([&] {
      while (absl::Now() < end) {
        v1::PendingInstructionsRequest req;
        req.set_agent_id(absl::StrCat("sign-", run, "-", next++));
        req.set_platform("bench-sign");
        req.set_channel(channel);
        req.set_version("0.2.0");
        v1::PendingInstructionsResponse resp;
        grpc::ClientContext ctx;
        ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
        if (stub->PendingInstructions(&ctx, req, &resp).ok()) {
          issued += resp.instructions_size();
          if (resp.instructions_size() > 0) envelope_bytes = resp.instructions(0).payload().size();
        } else {
          ++failures;
        }
      }
    });
  }
  for (auto& t : callers) t.join();
  double service_rate = static_cast<double>(issued.load()) / seconds;
  // The fan-out's path: PendingInstructionsBatch for 500 fresh agents per call (the
  // gateway's batch size), each agent's offer signed with its own nonce.
  constexpr int kBatch = 500;
  std::atomic<int64_t> batch_issued{0};
  end = absl::Now() + absl::Seconds(seconds);
  std::vector<std::thread> batchers;
  for (int t = 0; t < 2; ++t) {
    batchers.emplace_back([&] {
      while (absl::Now() < end) {
        v1::PendingInstructionsBatchRequest req;
        for (int i = 0; i < kBatch; ++i) {
          v1::PendingInstructionsRequest* a = req.add_agents();
          a->set_agent_id(absl::StrCat("sign-", run, "-", next++));
          a->set_platform("bench-sign");
          a->set_channel(channel);
          a->set_version("0.2.0");
        }
        v1::PendingInstructionsBatchResponse resp;
        grpc::ClientContext ctx;
        ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
        if (stub->PendingInstructionsBatch(&ctx, req, &resp).ok()) {
          for (const auto& a : resp.agents()) batch_issued += a.instructions_size();
        } else {
          ++failures;
        }
      }
    });
  }
  for (auto& t : batchers) t.join();
  double batch_rate = static_cast<double>(batch_issued.load()) / seconds;
  // Raw libsodium on the same machine, same payload size, one thread per core.
  std::string msg = RandomBytes(std::max<size_t>(envelope_bytes.load(), 64));
  unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
  crypto_sign_keypair(pk, sk);
  std::atomic<int64_t> signed_count{0};
  unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  end = absl::Now() + absl::Seconds(seconds);
  std::vector<std::thread> signers;
  for (unsigned t = 0; t < cores; ++t) {
    signers.emplace_back([&] {
      unsigned char sig[crypto_sign_BYTES];
      int64_t local = 0;
      while (absl::Now() < end) {
        crypto_sign_detached(sig, nullptr, reinterpret_cast<const unsigned char*>(msg.data()),
                             msg.size(), sk);
        ++local;
      }
      signed_count += local;
    });
  }
  for (auto& t : signers) t.join();
  double raw_rate = static_cast<double>(signed_count.load()) / seconds;
  r.Set("payload_bytes", static_cast<int64_t>(msg.size()));
  r.Set("service_offers_issued_per_s", service_rate);
  r.Set("service_call_failures", failures.load());
  r.Set("raw_crypto_sign_detached_per_s", raw_rate);
  r.Set("raw_signing_threads", static_cast<int64_t>(cores));
  r.Set("ratio_service_to_raw", raw_rate > 0 ? service_rate / raw_rate : 0.0);
  r.Set("service_batch_offers_issued_per_s", batch_rate);
  r.Set("ratio_batch_to_raw", raw_rate > 0 ? batch_rate / raw_rate : 0.0);
  r.Write(-1);
  return 0;
}

int Soak(OperatorClient& op, int n) {
  Result r("soak");
  Fleet f(BaseOptions(op, n));
  bool ok = ConnectAll(f, n, r);
  f.stats().ClearErrors();
  auto pids = Pids();
  pids.emplace_back("fleet-tool", getpid());
  std::map<std::string, std::vector<ProcSample>> series;
  absl::Time end = absl::Now() + absl::Minutes(absl::GetFlag(FLAGS_minutes));
  while (true) {
    for (const auto& [name, pid] : pids) {
      if (std::optional<ProcSample> s = SampleProcess(pid)) series[name].push_back(*s);
    }
    if (absl::Now() >= end) break;
    absl::SleepFor(absl::Seconds(10));
  }
  for (const auto& [name, samples] : series) {
    if (samples.size() < 3) continue;
    // After warm-up (the first third), RSS should stay flat: report min, max and the drift.
    size_t warm = samples.size() / 3;
    double lo = 1e18, hi = 0;
    for (size_t i = warm; i < samples.size(); ++i) {
      lo = std::min(lo, samples[i].rss_kib);
      hi = std::max(hi, samples[i].rss_kib);
    }
    r.Set(name + ".rss_kib_after_warmup_min", lo);
    r.Set(name + ".rss_kib_after_warmup_max", hi);
    r.Set(name + ".rss_drift_pct", lo > 0 ? (hi - lo) * 100 / lo : 0.0);
    r.Set(name + ".cores_avg", CoresBetween(samples[warm], samples.back()));
    std::string rss;
    for (const auto& s : samples)
      absl::StrAppend(&rss, rss.empty() ? "" : " ", static_cast<int64_t>(s.rss_kib));
    r.Set(name + ".rss_kib_every_10s", rss);
  }
  r.Set("connected_at_end", f.ConnectedSince());
  r.Errors(f.stats());
  r.Write(n);
  return ok ? 0 : 2;
}

}  // namespace

int main(int argc, char** argv) {
  redflag::ConfigureProcess();
  absl::ParseCommandLine(argc, argv);
  if (sodium_init() < 0) Die("libsodium failed to initialise");
  // One socket per simulated agent.
  rlimit nofile{};
  getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;
  setrlimit(RLIMIT_NOFILE, &nofile);
  const char* password = std::getenv("REDFLAG_ADMIN_PASSWORD");
  if (password == nullptr) Die("REDFLAG_ADMIN_PASSWORD is not set");
  std::string first_target =
      std::vector<std::string>(absl::StrSplit(absl::GetFlag(FLAGS_target), ','))[0];
  OperatorClient op(first_target, ReadAll(absl::GetFlag(FLAGS_ca_file)));
  if (absl::Status s = op.Login(absl::GetFlag(FLAGS_admin_user), password); !s.ok()) {
    Die(s.ToString());
  }
  std::string scenario = absl::GetFlag(FLAGS_scenario);
  int n = absl::GetFlag(FLAGS_agents);
  if (scenario == "hold") return Hold(op, n);
  if (scenario == "fanout") return Fanout(op, n);
  if (scenario == "storm") return Storm(op, n);
  if (scenario == "rate") return Rate(op, n);
  if (scenario == "sign") return Sign(op);
  if (scenario == "soak") return Soak(op, n);
  Die("unknown --scenario " + scenario);
}
