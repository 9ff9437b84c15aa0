// A running RedFlag for end-to-end tests: the real auth, agents, updates and gateway
// binaries on free loopback ports, talking mTLS, against the fixture's PostgreSQL.
// Started once per test process (Cluster::Get()), stopped at exit; children also die
// with the test process (PR_SET_PDEATHSIG).
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/tls.h"
#include "redflag/v1/agents.grpc.pb.h"
#include "redflag/v1/auth.grpc.pb.h"
#include "redflag/v1/gateway.grpc.pb.h"

namespace redflag::testing {

// A child process with extra environment; stopped (SIGTERM, then SIGKILL) on destruction.
class Process {
 public:
  Process(const std::string& name, std::vector<std::string> argv,
          const std::map<std::string, std::string>& env);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  bool Running();
  // SIGKILL, as a crash or an OOM kill: no shutdown of any kind.
  void Kill();
  // Sends `signal` (e.g. SIGSTOP / SIGCONT: a process that stops answering, then resumes).
  void Signal(int signal);
  // Waits for exit; returns the exit code (or -1 on timeout / signal).
  int Wait(int timeout_ms);
  const std::string& log_path() const { return log_; }
  // Its exit code once Running() saw it exit (-1 for a signal or while it runs).
  int exit_code() const { return exit_code_; }
  // The last `bytes` of its log (every start of the same name in this test process appends
  // to one log), for error messages that say why a child did not come up.
  std::string LogTail(size_t bytes = 2000) const;
  // What the kernel says of the running child (its program, state, where it waits, its
  // threads), for a child that neither exits nor listens: whether it ever reached execve.
  std::string KernelView() const;

 private:
  pid_t pid_ = -1;
  std::string log_;
  int exit_code_ = -1;
};

// A loopback TCP port nothing is bound to now, chosen at random below the kernel's ephemeral
// range (ip_local_port_range): an outgoing connection of a parallel test (hundreds of
// simulated agents) cannot take it before our child binds it. Never the same port twice in
// one test process. Two test processes may still pick the same one, rarely: the starters
// below notice a child that exited instead of listening and retry on other ports.
int FreePort();
// Whether something accepts connections on 127.0.0.1:`port` within `timeout_ms`.
bool WaitForPort(int port, int timeout_ms);
// Waits until `p` listens on `port`; "" then, else why not: it exited (with its code and the
// tail of its log) or did not listen within `timeout_ms` (sanitizer builds start slowly on a
// loaded machine: give it a minute).
std::string WaitUntilListening(Process& p, int port, int timeout_ms = 60000);
std::string BinaryPath(const std::string& relative);

class Cluster {
 public:
  static Cluster& Get();

  std::string gateway_address() const;
  std::string internal_address(const std::string& service) const;
  std::unique_ptr<v1::OperatorService::Stub> Operator() const;
  std::unique_ptr<v1::AgentGateway::Stub> AgentGateway() const;
  // Stub for an internal service with the given client credentials.
  std::shared_ptr<grpc::Channel> InternalChannel(
      const std::string& service, std::shared_ptr<grpc::ChannelCredentials> creds) const;
  // An admin access token (logs in once).
  std::string AdminToken();
  // A fresh registration token secret with `seats` seats.
  std::string NewRegistrationToken(int seats);
  // Creates an operator account and returns its access token.
  std::string NewUser(const std::string& username, v1::Role role);
  // Starts another gateway on the same backends with `overrides` added to its
  // environment; `*port` receives its port. Stopped when the Process is destroyed.
  // `listen_host` "[::]" accepts both 127.0.0.1 and ::1: two distinct client sources.
  // `*metrics_port`, when given, receives the port of its Prometheus endpoint.
  std::unique_ptr<Process> StartGateway(const std::map<std::string, std::string>& overrides,
                                        int* port, const std::string& listen_host = "127.0.0.1",
                                        int* metrics_port = nullptr);
  // The same on a given port (a restart of a gateway on the port its agents know).
  std::unique_ptr<Process> StartGatewayOn(int port,
                                          const std::map<std::string, std::string>& overrides,
                                          const std::string& listen_host = "127.0.0.1");
  // host:port of a service's Prometheus endpoint ("auth", "agents", "updates", "gateway").
  int metrics_port(const std::string& service) const { return metrics_ports_.at(service); }
  // The shared gateway's plaintext health-only port (for Kubernetes probes).
  int gateway_health_port() const { return ports_.at("gateway-health"); }
  static void Authorize(grpc::ClientContext& ctx, const std::string& token);
  // What an internal service ("auth", "agents", "updates") is started with: its mTLS files
  // and its own least-privilege database role (never the owner's).
  static std::map<std::string, std::string> ServiceEnv(const std::string& service);
  // Whether every process the cluster started is still running; names the dead in `dead`.
  bool AllRunning(std::string* dead = nullptr);
  // SIGKILL to an internal service ("auth", "agents", "updates"), as a crash.
  void KillService(const std::string& service);
  // Sends `signal` to an internal service.
  void SignalService(const std::string& service, int signal);
  // Kills it if it runs and starts it again on its ports; returns once it listens.
  void RestartService(const std::string& service);

 private:
  Cluster();
  std::unique_ptr<Process> StartService(const std::string& service) const;
  // StartGateway, also saying which metrics and health ports the gateway serves.
  std::unique_ptr<Process> StartGatewayReporting(
      const std::map<std::string, std::string>& overrides, int* port,
      const std::string& listen_host, int* metrics_port, int* health_port);
  // Forks a gateway on `port` (metrics and health on free ports it reports) without waiting.
  std::unique_ptr<Process> LaunchGateway(int port,
                                         const std::map<std::string, std::string>& overrides,
                                         const std::string& listen_host, int* metrics_port,
                                         int* health_port) const;
  // Launches until the gateway listens on *port, at most 3 times while it exits at once (a
  // port lost to a parallel test process); a fresh *port each time when `fresh_port`, else
  // the caller's. Throws saying why it did not start.
  std::unique_ptr<Process> LaunchGatewayUntilListening(
      int* port, bool fresh_port, const std::map<std::string, std::string>& overrides,
      const std::string& listen_host, int* metrics_port, int* health_port);
  std::map<std::string, size_t> service_procs_;  // index in procs_
  std::map<std::string, std::string> GatewayEnv() const;
  std::map<std::string, int> ports_;
  std::map<std::string, int> metrics_ports_;
  std::vector<std::unique_ptr<Process>> procs_;
  std::string admin_token_;
};

}  // namespace redflag::testing

namespace redflag::testing {

// A fake machine tree (etc/machine-id, proc/cpuinfo, proc/meminfo) with a random id, for
// redflag-agent --machine_root; returns its root directory.
std::string MakeMachineTree(const std::string& name);

// Registers directly through AgentGateway.Register.
grpc::Status RegisterAgent(const std::string& secret, const std::string& machine_id,
                           const std::string& version, v1::RegisterResponse* resp);

// The first message of an agent stream (seq 1).
v1::AgentMessage HelloMessage(const std::string& agent_id, const std::string& machine_id,
                              const std::string& version);

// Opens Connect with the agent's credentials, sends hello, reads the first reply.
// OK with the HelloAck, or the status the gateway finished the stream with. An empty
// `gateway_address` means the shared cluster's gateway.
grpc::Status OpenStream(const std::string& agent_id, const std::string& token,
                        const std::string& machine_id, const std::string& version,
                        const std::string& gateway_address = "");

// The agent as an admin sees it through the gateway; the status says why not.
grpc::Status GetAgentAsAdmin(const std::string& id, v1::Agent* out);

// Every agent matching `filter`, page by page, as an admin (the listing must succeed).
std::vector<v1::Agent> ListAllAgents(v1::ListAgentsRequest filter);

// The registered agent whose bound fingerprint starts with `machine_prefix`, if any
// (the listing itself must succeed).
std::optional<v1::Agent> FindAgentByMachine(const std::string& machine_prefix);

// AgentGateway.RefreshCredentials on the shared gateway, x-machine-id set to `machine`.
grpc::Status RefreshAgent(const std::string& agent_id, const std::string& machine,
                          const std::string& refresh_token, v1::TokenPair* out);

// Runs a shell command; its combined output and exit code (-1 if it did not exit).
std::pair<std::string, int> RunCommand(const std::string& command);

// A random 64-hex machine id.
std::string RandomMachineId();

// A redflag-agent process for the machine tree `root` (state in root/state).
std::unique_ptr<Process> StartAgent(const std::string& name, const std::string& root,
                                    const std::string& gateway_address,
                                    const std::string& registration_token,
                                    std::vector<std::string> extra_args = {});

// Waits until `needle` appears at least `times` times in the process's log.
bool WaitForLog(const Process& p, const std::string& needle, int timeout_ms, int times = 1);
int CountInLog(const Process& p, const std::string& needle);

// Body of GET http://127.0.0.1:<port><path> (plain HTTP/1.0, for /metrics).
std::string HttpGet(int port, const std::string& path);

// Rows of `sql` (a trusted test query) from the fixture database, first column as text.
std::vector<std::string> QueryColumn(const std::string& sql,
                                     const std::vector<std::string>& params);

}  // namespace redflag::testing
