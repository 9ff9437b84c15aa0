#include "tests/support/cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "tests/support/test_env.h"

extern char** environ;

namespace redflag::testing {

Process::Process(const std::string& name, std::vector<std::string> argv,
                 const std::map<std::string, std::string>& env) {
  std::string dir = TestVar("REDFLAG_TEST_ROOT") + "/logs";
  (void)mkdir(dir.c_str(), 0755);
  log_ = absl::StrCat(dir, "/", name, "-", getpid(), ".log");
  // Overrides replace inherited values (getenv would return the first of two entries).
  std::map<std::string, std::string> merged;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    size_t eq = kv.find('=');
    if (eq != std::string::npos) merged[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : env) merged[k] = v;
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : merged) env_strings.push_back(absl::StrCat(k, "=", v));
  // Everything the child needs is built before fork: between fork and execve the child may
  // only make async-signal-safe calls. It is a copy of a multithreaded process (a fleet's
  // worker threads) whose other threads may have held the allocator's lock at the fork; a
  // malloc there (a vector's push_back) could wait forever. (Suspected, not reproduced, for a
  // gateway restarted by a fault test under ASan that never printed a line nor listened.)
  std::vector<char*> args, envp;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  const char* log_file = log_.c_str();
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    int fd = open(log_file, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
}

bool Process::Running() {
  if (pid_ <= 0) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    pid_ = -1;
    return false;
  }
  return true;
}

int Process::Wait(int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 20) {
    if (!Running()) return exit_code_;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

void Process::Kill() {
  if (!Running()) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

std::string Process::LogTail(size_t bytes) const {
  std::string all = ReadFile(log_);
  return all.size() > bytes ? all.substr(all.size() - bytes) : all;
}

std::string Process::KernelView() const {
  if (pid_ <= 0) return "not running";
  const std::string proc = absl::StrCat("/proc/", pid_);
  char exe[4096];
  ssize_t n = readlink((proc + "/exe").c_str(), exe, sizeof(exe) - 1);
  std::string state, threads;
  std::istringstream status(ReadFile(proc + "/status"));
  for (std::string line; std::getline(status, line);) {
    absl::string_view v(line);
    if (absl::ConsumePrefix(&v, "State:")) state = std::string(absl::StripAsciiWhitespace(v));
    if (absl::ConsumePrefix(&v, "Threads:")) threads = std::string(absl::StripAsciiWhitespace(v));
  }
  return absl::StrCat("pid ", pid_, ", program ", n > 0 ? std::string(exe, n) : "?", ", state ",
                      state, ", threads ", threads, ", waiting in ", ReadFile(proc + "/wchan"));
}

void Process::Signal(int signal) {
  if (Running()) kill(pid_, signal);
}

Process::~Process() {
  if (!Running()) return;
  kill(pid_, SIGTERM);
  if (Wait(5000) == -1 && Running()) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

namespace {

// Whether nothing on this machine is bound to `port` (any address), as our children's bind
// would need.
bool PortIsFree(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

// The lowest ephemeral port (32768 when /proc does not say).
int EphemeralLow() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  int low = 0;
  if (!(in >> low) || low <= 0) low = 32768;
  return low;
}

}  // namespace

int FreePort() {
  static std::mutex mu;
  static std::set<int> handed_out;
  static std::mt19937 rng(
      static_cast<uint32_t>(getpid()) ^
      static_cast<uint32_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
  constexpr int kLow = 20000;
  const int high = std::max(kLow + 1000, std::min(EphemeralLow(), 32768));
  std::uniform_int_distribution<int> pick(kLow, high - 1);
  std::lock_guard<std::mutex> lock(mu);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    int port = pick(rng);
    if (handed_out.count(port) || !PortIsFree(port)) continue;
    handed_out.insert(port);
    return port;
  }
  throw std::runtime_error("no free loopback port below the ephemeral range");
}

bool WaitForPort(int port, int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 50) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    close(fd);
    if (ok) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

std::string WaitUntilListening(Process& p, int port, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!p.Running()) {
      return absl::StrCat("it exited (code ", p.exit_code(), ") before listening on port ", port,
                          "; the end of ", p.log_path(), ":\n", p.LogTail());
    }
    if (WaitForPort(port, 100)) return "";
  }
  return absl::StrCat("it did not listen on port ", port, " within ", timeout_ms, " ms (",
                      p.KernelView(), "); the end of ", p.log_path(), ":\n", p.LogTail());
}

std::string BinaryPath(const std::string& relative) {
  return absl::StrCat(REDFLAG_BINARY_DIR, "/", relative);
}

Cluster& Cluster::Get() {
  static Cluster* cluster = new Cluster();
  static struct Stopper {
    ~Stopper() { delete cluster; }
  } stopper;
  return *cluster;
}

namespace {

// The shared cluster runs many tests from one address: limits that would trip across
// tests are raised here; dedicated gateways and direct calls test them at their values.
const std::map<std::string, std::string>& SharedClusterEnv() {
  static const std::map<std::string, std::string> env = {
      {"REDFLAG_CHECK_IN_INTERVAL_SECONDS", "1"},
      {"MIN_AGENT_VERSION", "0.1.22"},
      {"REDFLAG_MAX_TOKENS", "100000"},
      {"REDFLAG_LOGIN_THROTTLE_THRESHOLD", "3"},
      {"REDFLAG_LOGIN_SOURCE_THRESHOLD", "100000"},
      {"REDFLAG_LOGIN_THROTTLE_FIRST_SECONDS", "2"},
      {"REDFLAG_RATE_LIMIT_REGISTRATION", "10000:10000"},
      {"REDFLAG_RATE_LIMIT_LOGIN", "10000:10000"},
      {"REDFLAG_RATE_LIMIT_OPERATOR_WRITES", "10000:10000"},
      {"REDFLAG_BAD_TOKEN_THRESHOLD", "100000"},
      // Rollout tests wait for the supervisor's verdicts.
      {"REDFLAG_ROLLOUT_EVALUATE_MS", "200"},
  };
  return env;
}

}  // namespace

std::map<std::string, std::string> Cluster::ServiceEnv(const std::string& service) {
  std::string upper = absl::AsciiStrToUpper(service);
  return {{"REDFLAG_TLS_CA_FILE", PkiFile("internal-ca.crt")},
          {"REDFLAG_TLS_CERT_FILE", PkiFile(absl::StrCat(service, ".crt"))},
          {"REDFLAG_TLS_KEY_FILE", PkiFile(absl::StrCat(service, ".key"))},
          {"REDFLAG_DB_USER", absl::StrCat("redflag_", service)},
          {"REDFLAG_DB_PASSWORD", TestVar(absl::StrCat("REDFLAG_DB_", upper, "_PASSWORD"))}};
}

Cluster::Cluster() {
  ExportTestEnv();
  // As a deployment does: migrations and grants as the owner (the test env's database user),
  // then each service as its own role.
  auto [out, rc] = RunCommand(BinaryPath("tools/redflag-migrate"));
  if (rc != 0) throw std::runtime_error("redflag-migrate failed: " + out);
  for (const char* svc : {"auth", "agents", "updates"}) {
    service_procs_[svc] = procs_.size();
    procs_.push_back(nullptr);
  }
  // Started together (each takes seconds under sanitizers), then each awaited; a service that
  // exited instead of listening (a port another test process took) starts again elsewhere.
  std::map<std::string, std::string> why;
  for (int attempt = 0; attempt < 3; ++attempt) {
    for (const char* svc : {"auth", "agents", "updates"}) {
      if (procs_[service_procs_[svc]] != nullptr && !why.count(svc)) continue;
      ports_[svc] = FreePort();
      metrics_ports_[svc] = FreePort();
      procs_[service_procs_[svc]] = StartService(svc);
    }
    why.clear();
    for (const char* svc : {"auth", "agents", "updates"}) {
      std::string w = WaitUntilListening(*procs_[service_procs_[svc]], ports_[svc]);
      if (!w.empty()) why[svc] = w;
    }
    if (why.empty()) break;
  }
  if (!why.empty()) {
    throw std::runtime_error(
        absl::StrCat(why.begin()->first, " did not start: ", why.begin()->second));
  }
  int gw = 0;
  procs_.push_back(StartGatewayReporting({}, &gw, "127.0.0.1", &metrics_ports_["gateway"],
                                         &ports_["gateway-health"]));
  ports_["gateway"] = gw;
}

std::unique_ptr<Process> Cluster::StartService(const std::string& svc) const {
  std::map<std::string, std::string> env = SharedClusterEnv();
  for (const auto& [k, v] : ServiceEnv(svc)) env[k] = v;
  return std::make_unique<Process>(
      svc,
      std::vector<std::string>{BinaryPath(absl::StrCat("services/", svc, "/redflag-", svc)),
                               absl::StrCat("--listen=127.0.0.1:", ports_.at(svc)),
                               absl::StrCat("--metrics=127.0.0.1:", metrics_ports_.at(svc))},
      env);
}

void Cluster::KillService(const std::string& svc) { procs_.at(service_procs_.at(svc))->Kill(); }

void Cluster::SignalService(const std::string& svc, int signal) {
  procs_.at(service_procs_.at(svc))->Signal(signal);
}

void Cluster::RestartService(const std::string& svc) {
  std::unique_ptr<Process>& p = procs_.at(service_procs_.at(svc));
  p->Kill();
  p = StartService(svc);
  std::string why = WaitUntilListening(*p, ports_.at(svc));
  if (!why.empty()) throw std::runtime_error(absl::StrCat(svc, " did not restart: ", why));
}

std::map<std::string, std::string> Cluster::GatewayEnv() const {
  std::map<std::string, std::string> env = SharedClusterEnv();
  env["REDFLAG_TLS_CERT_FILE"] = PkiFile("gateway-public.crt");
  env["REDFLAG_TLS_KEY_FILE"] = PkiFile("gateway-public.key");
  env["REDFLAG_INTERNAL_TLS_CA_FILE"] = PkiFile("internal-ca.crt");
  env["REDFLAG_INTERNAL_TLS_CERT_FILE"] = PkiFile("gateway.crt");
  env["REDFLAG_INTERNAL_TLS_KEY_FILE"] = PkiFile("gateway.key");
  env["REDFLAG_AUTH_ADDR"] = internal_address("auth");
  env["REDFLAG_AGENTS_ADDR"] = internal_address("agents");
  env["REDFLAG_UPDATES_ADDR"] = internal_address("updates");
  return env;
}

std::unique_ptr<Process> Cluster::StartGateway(const std::map<std::string, std::string>& overrides,
                                               int* port, const std::string& listen_host,
                                               int* metrics_port) {
  int metrics = 0, health = 0;
  std::unique_ptr<Process> proc =
      StartGatewayReporting(overrides, port, listen_host, &metrics, &health);
  if (metrics_port != nullptr) *metrics_port = metrics;
  return proc;
}

std::unique_ptr<Process> Cluster::StartGatewayReporting(
    const std::map<std::string, std::string>& overrides, int* port, const std::string& listen_host,
    int* metrics_port, int* health_port) {
  return LaunchGatewayUntilListening(port, /*fresh_port=*/true, overrides, listen_host,
                                     metrics_port, health_port);
}

std::unique_ptr<Process> Cluster::StartGatewayOn(
    int port_number, const std::map<std::string, std::string>& overrides,
    const std::string& listen_host) {
  int metrics = 0, health = 0;
  return LaunchGatewayUntilListening(&port_number, /*fresh_port=*/false, overrides, listen_host,
                                     &metrics, &health);
}

std::unique_ptr<Process> Cluster::LaunchGatewayUntilListening(
    int* port, bool fresh_port, const std::map<std::string, std::string>& overrides,
    const std::string& listen_host, int* metrics_port, int* health_port) {
  std::string why;
  for (int attempt = 0; attempt < 3; ++attempt) {
    // Every attempt has fresh metrics and health ports (and a fresh main port unless the
    // caller fixed it): a gateway that exited at once most likely lost one of them to a
    // parallel test process.
    if (fresh_port) *port = FreePort();
    std::unique_ptr<Process> proc =
        LaunchGateway(*port, overrides, listen_host, metrics_port, health_port);
    why = WaitUntilListening(*proc, *port);
    if (why.empty()) return proc;
    if (proc->Running()) break;  // slow, not refused a port: starting again will not help
  }
  throw std::runtime_error(absl::StrCat("gateway did not start: ", why));
}

std::unique_ptr<Process> Cluster::LaunchGateway(int port_number,
                                                const std::map<std::string, std::string>& overrides,
                                                const std::string& listen_host, int* metrics_port,
                                                int* health_port) const {
  std::map<std::string, std::string> env = GatewayEnv();
  for (const auto& [k, v] : overrides) env[k] = v;
  const int metrics = *metrics_port = FreePort();
  const int health = *health_port = FreePort();
  return std::make_unique<Process>(
      "gateway",
      std::vector<std::string>{BinaryPath("services/gateway/redflag-gateway"),
                               absl::StrCat("--listen=", listen_host, ":", port_number),
                               absl::StrCat("--metrics=127.0.0.1:", metrics),
                               absl::StrCat("--health=127.0.0.1:", health)},
      env);
}

bool Cluster::AllRunning(std::string* dead) {
  bool all = true;
  for (auto& p : procs_) {
    if (!p->Running()) {
      all = false;
      if (dead != nullptr) absl::StrAppend(dead, p->log_path(), " ");
    }
  }
  return all;
}

std::string Cluster::gateway_address() const {
  return absl::StrCat("localhost:", ports_.at("gateway"));
}

std::string Cluster::internal_address(const std::string& service) const {
  return absl::StrCat("localhost:", ports_.at(service));
}

std::unique_ptr<v1::OperatorService::Stub> Cluster::Operator() const {
  return v1::OperatorService::NewStub(
      MakeChannel(gateway_address(), TlsChannelCredentials(ReadFile(PkiFile("public-ca.crt")))));
}

std::unique_ptr<v1::AgentGateway::Stub> Cluster::AgentGateway() const {
  return v1::AgentGateway::NewStub(
      MakeChannel(gateway_address(), TlsChannelCredentials(ReadFile(PkiFile("public-ca.crt")))));
}

std::shared_ptr<grpc::Channel> Cluster::InternalChannel(
    const std::string& service, std::shared_ptr<grpc::ChannelCredentials> creds) const {
  return MakeChannel(internal_address(service), std::move(creds));
}

void Cluster::Authorize(grpc::ClientContext& ctx, const std::string& token) {
  ctx.AddMetadata("authorization", absl::StrCat("Bearer ", token));
}

std::string Cluster::AdminToken() {
  if (!admin_token_.empty()) return admin_token_;
  v1::LoginRequest req;
  req.set_username("admin");
  req.set_password(TestVar("REDFLAG_ADMIN_PASSWORD"));
  v1::TokenPair resp;
  grpc::ClientContext ctx;
  grpc::Status s = Operator()->Login(&ctx, req, &resp);
  if (!s.ok()) throw std::runtime_error(absl::StrCat("admin login failed: ", s.error_message()));
  admin_token_ = resp.access_token();
  return admin_token_;
}

std::string Cluster::NewRegistrationToken(int seats) {
  v1::CreateRegistrationTokenRequest req;
  req.set_seats(seats);
  req.set_label("e2e");
  v1::CreateRegistrationTokenResponse resp;
  grpc::ClientContext ctx;
  Authorize(ctx, AdminToken());
  grpc::Status s = Operator()->CreateRegistrationToken(&ctx, req, &resp);
  if (!s.ok()) throw std::runtime_error(absl::StrCat("create token failed: ", s.error_message()));
  return resp.secret();
}

}  // namespace redflag::testing

namespace redflag::testing {

std::string MakeMachineTree(const std::string& name) {
  std::string root = absl::StrCat(TestVar("REDFLAG_TEST_ROOT"), "/machines/", name, "-",
                                  RandomUuid().substr(0, 8));
  std::filesystem::create_directories(root + "/etc");
  std::filesystem::create_directories(root + "/proc");
  auto write = [&](const std::string& rel, const std::string& text) {
    std::ofstream out(root + rel);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + root + rel);
  };
  write("/etc/machine-id", HexEncode(RandomBytes(16)) + "\n");
  write("/proc/cpuinfo",
        "processor\t: 0\nmodel name\t: Test CPU\nprocessor\t: 1\nmodel name\t: Test CPU\n");
  write("/proc/meminfo", "MemTotal:       16384000 kB\nMemFree:         1000 kB\n");
  return root;
}

grpc::Status GetAgentAsAdmin(const std::string& id, v1::Agent* out) {
  auto& c = Cluster::Get();
  grpc::ClientContext ctx;
  Cluster::Authorize(ctx, c.AdminToken());
  v1::GetAgentRequest req;
  req.set_id(id);
  return c.Operator()->GetAgent(&ctx, req, out);
}

std::vector<v1::Agent> ListAllAgents(v1::ListAgentsRequest filter) {
  auto& c = Cluster::Get();
  std::vector<v1::Agent> out;
  filter.set_page_size(1000);
  do {
    grpc::ClientContext ctx;
    Cluster::Authorize(ctx, c.AdminToken());
    v1::ListAgentsResponse resp;
    grpc::Status s = c.Operator()->ListAgents(&ctx, filter, &resp);
    INFO(s.error_message());
    REQUIRE(s.ok());
    out.insert(out.end(), resp.agents().begin(), resp.agents().end());
    filter.set_page_token(resp.next_page_token());
  } while (!filter.page_token().empty());
  return out;
}

std::optional<v1::Agent> FindAgentByMachine(const std::string& machine_prefix) {
  for (const auto& a : ListAllAgents({})) {
    if (a.machine_id_prefix() == machine_prefix) return a;
  }
  return std::nullopt;
}

std::string RandomMachineId() { return HexEncode(RandomBytes(32)); }

std::string Cluster::NewUser(const std::string& username, v1::Role role) {
  std::string password = "pw-" + HexEncode(RandomBytes(12));
  v1::CreateUserRequest req;
  req.set_username(username);
  req.set_password(password);
  req.set_role(role);
  v1::User user;
  grpc::ClientContext ctx;
  Authorize(ctx, AdminToken());
  grpc::Status s = Operator()->CreateUser(&ctx, req, &user);
  if (!s.ok()) throw std::runtime_error(absl::StrCat("create user failed: ", s.error_message()));
  v1::LoginRequest login;
  login.set_username(username);
  login.set_password(password);
  v1::TokenPair pair;
  grpc::ClientContext lctx;
  s = Operator()->Login(&lctx, login, &pair);
  if (!s.ok()) throw std::runtime_error(absl::StrCat("login failed: ", s.error_message()));
  return pair.access_token();
}

std::unique_ptr<Process> StartAgent(const std::string& name, const std::string& root,
                                    const std::string& gateway_address,
                                    const std::string& registration_token,
                                    std::vector<std::string> extra_args) {
  std::vector<std::string> argv = {BinaryPath("agent/redflag-agent"),
                                   "--server=" + gateway_address,
                                   "--ca_file=" + PkiFile("public-ca.crt"),
                                   "--state_dir=" + root + "/state",
                                   "--machine_root=" + root,
                                   "--max_backoff_seconds=1"};
  if (!registration_token.empty()) argv.push_back("--registration_token=" + registration_token);
  for (auto& a : extra_args) argv.push_back(std::move(a));
  return std::make_unique<Process>(name, std::move(argv), std::map<std::string, std::string>{});
}

int CountInLog(const Process& p, const std::string& needle) {
  std::string log = ReadFile(p.log_path());
  int n = 0;
  for (size_t at = log.find(needle); at != std::string::npos; at = log.find(needle, at + 1)) ++n;
  return n;
}

bool WaitForLog(const Process& p, const std::string& needle, int timeout_ms, int times) {
  for (int waited = 0; waited <= timeout_ms; waited += 50) {
    if (CountInLog(p, needle) >= times) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

std::string HttpGet(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  (void)!write(fd, req.data(), req.size());
  std::string resp;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) resp.append(buf, static_cast<size_t>(n));
  close(fd);
  size_t body = resp.find("\r\n\r\n");
  return body == std::string::npos ? resp : resp.substr(body + 4);
}

std::vector<std::string> QueryColumn(const std::string& sql,
                                     const std::vector<std::string>& params) {
  static std::unique_ptr<PgPool> pool = TestPool(2);
  std::vector<std::string> out;
  static std::atomic<int> n{0};
  std::string name = absl::StrCat("test_query_", n++);
  Statement stmt{name.c_str(), sql.c_str()};
  Params p(params.begin(), params.end());
  absl::Status s = pool->WithConnection([&](PgConnection& c) -> absl::Status {
    absl::StatusOr<PgResult> r = c.Exec(stmt, p);
    if (!r.ok()) return r.status();
    for (int i = 0; i < r->Rows(); ++i) out.push_back(r->Text(i, 0));
    return absl::OkStatus();
  });
  if (!s.ok()) throw std::runtime_error(s.ToString());
  return out;
}

grpc::Status RegisterAgent(const std::string& secret, const std::string& machine_id,
                           const std::string& version, v1::RegisterResponse* resp) {
  v1::RegisterRequest req;
  req.set_registration_token(secret);
  req.set_machine_id(machine_id);
  req.set_hostname("e2e-host");
  req.set_platform("Linux-x86_64");
  req.set_version(version);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  return Cluster::Get().AgentGateway()->Register(&ctx, req, resp);
}

v1::AgentMessage HelloMessage(const std::string& agent_id, const std::string& machine_id,
                              const std::string& version) {
  v1::AgentMessage hello;
  hello.set_seq(1);
  hello.mutable_hello()->set_agent_id(agent_id);
  hello.mutable_hello()->set_machine_id(machine_id);
  hello.mutable_hello()->set_version(version);
  return hello;
}

grpc::Status OpenStream(const std::string& agent_id, const std::string& token,
                        const std::string& machine_id, const std::string& version,
                        const std::string& gateway_address) {
  auto stub = gateway_address.empty()
                  ? Cluster::Get().AgentGateway()
                  : v1::AgentGateway::NewStub(MakeChannel(
                        gateway_address, TlsChannelCredentials(ReadFile(PkiFile("public-ca.crt"))),
                        "localhost"));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  Cluster::Authorize(ctx, token);
  ctx.AddMetadata("x-machine-id", machine_id);
  auto stream = stub->Connect(&ctx);
  stream->Write(HelloMessage(agent_id, machine_id, version));
  v1::ServerMessage reply;
  if (stream->Read(&reply) && reply.has_hello_ack()) {
    stream->WritesDone();
    ctx.TryCancel();
    (void)stream->Finish();
    return grpc::Status::OK;
  }
  return stream->Finish();
}

grpc::Status RefreshAgent(const std::string& agent_id, const std::string& machine,
                          const std::string& refresh_token, v1::TokenPair* out) {
  grpc::ClientContext ctx;
  ctx.AddMetadata("x-machine-id", machine);
  v1::RefreshAgentRequest req;
  req.set_refresh_token(refresh_token);
  req.set_agent_id(agent_id);
  return Cluster::Get().AgentGateway()->RefreshCredentials(&ctx, req, out);
}

std::pair<std::string, int> RunCommand(const std::string& command) {
  std::string out;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return {"popen failed", -1};
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
  int rc = pclose(p);
  return {out, WIFEXITED(rc) ? WEXITSTATUS(rc) : -1};
}

}  // namespace redflag::testing
