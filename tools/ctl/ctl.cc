#include "tools/ctl/ctl.h"

#include <fcntl.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/reflection.h>
#include <google/protobuf/timestamp.pb.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "common/config.h"
#include "common/security_settings.h"
#include "common/tls.h"
#include "redflag/v1/gateway.grpc.pb.h"
#include "tools/ctl/printable.h"
#include "tools/ctl/rollout_view.h"

namespace redflag::ctl {
namespace {

namespace pb = google::protobuf;
using Stub = v1::OperatorService::Stub;

// One command: an OperatorService method and how to call it.
struct Method {
  std::string name;  // kebab case
  std::string help;
  std::function<std::unique_ptr<pb::Message>()> request, response;
  std::function<grpc::Status(Stub&, grpc::ClientContext*, const pb::Message&, pb::Message*)> call;
  bool needs_token = true;  // false: the call is how a token is obtained
};

template <typename Req, typename Resp>
Method Unary(std::string name, std::string help,
             grpc::Status (Stub::*fn)(grpc::ClientContext*, const Req&, Resp*)) {
  Method m;
  m.name = std::move(name);
  m.help = std::move(help);
  m.request = [] { return std::make_unique<Req>(); };
  m.response = [] { return std::make_unique<Resp>(); };
  m.call = [fn](Stub& s, grpc::ClientContext* c, const pb::Message& req, pb::Message* resp) {
    return (s.*fn)(c, static_cast<const Req&>(req), static_cast<Resp*>(resp));
  };
  return m;
}

const std::vector<Method>& Methods() {
  static auto* methods = new std::vector<Method>{
      Unary("create-user", "create an operator account (admin)", &Stub::CreateUser),
      Unary("list-users", "list operator accounts (admin)", &Stub::ListUsers),
      Unary("create-registration-token",
            "create a registration token; the secret is shown this once (operator)",
            &Stub::CreateRegistrationToken),
      Unary("list-registration-tokens", "list registration tokens (viewer)",
            &Stub::ListRegistrationTokens),
      Unary("revoke-registration-token", "revoke a registration token (operator)",
            &Stub::RevokeRegistrationToken),
      Unary("list-agents", "list agents, filtered (viewer)", &Stub::ListAgents),
      Unary("get-agent", "one agent (viewer)", &Stub::GetAgent),
      Unary("block-agent", "block an agent: its streams close, its calls are refused (operator)",
            &Stub::BlockAgent),
      Unary("unblock-agent", "unblock an agent (operator)", &Stub::UnblockAgent),
      Unary("reset-agent-version", "reset the highest version an agent reported (operator)",
            &Stub::ResetAgentVersion),
      Unary("warn-agent", "send an agent a signed warning (operator)", &Stub::WarnAgent),
      Unary("verify-agent", "ask an agent to re-send its fingerprint and pinned keys (operator)",
            &Stub::VerifyAgent),
      Unary("rebind-agent", "bind an agent to a new machine fingerprint (operator)",
            &Stub::RebindAgent),
      Unary("delete-agent", "delete an agent (operator)", &Stub::DeleteAgent),
      Unary("list-updates", "list published updates (viewer)", &Stub::ListUpdates),
      Unary("get-update", "one update (viewer)", &Stub::GetUpdate),
      Unary("revoke-update", "revoke an update: open offers are withdrawn (operator)",
            &Stub::RevokeUpdate),
      Unary("list-signing-keys", "the update-signing key ring (viewer)", &Stub::ListSigningKeys),
      Unary("revoke-signing-key",
            "withdraw a leaked signing key from the ring and from every agent (admin)",
            &Stub::RevokeSigningKey),
      Unary("list-deliveries", "deliveries of an update or to an agent, with counts (viewer)",
            &Stub::ListDeliveries),
      Unary("get-rollout",
            "an update's staged rollout: each stage's figures, why it halted (viewer)",
            &Stub::GetRollout),
      Unary("pause-rollout", "pause a rollout: no stage starts until resumed (operator)",
            &Stub::PauseRollout),
      Unary("resume-rollout",
            "resume a paused or halted rollout; failures so far are forgiven (operator)",
            &Stub::ResumeRollout),
      Unary("abort-rollout", "abort a rollout: open and held offers are withdrawn (operator)",
            &Stub::AbortRollout),
      Unary("approve-rollout-stage", "start a stage that waits for approval (operator)",
            &Stub::ApproveRolloutStage),
      Unary("pause-all-rollouts", "emergency stop: pause every active rollout (operator)",
            &Stub::PauseAllRollouts),
      Unary("resume-all-rollouts", "lift the emergency stop's pauses (operator)",
            &Stub::ResumeAllRollouts),
      Unary("get-security-settings",
            "freshness window, violations before block, minimum version, offline-after, "
            "check-in interval, edge rate limits (admin)",
            &Stub::GetSecuritySettings),
      Unary("update-security-settings",
            "change the fields given, with --reason; each change is audited (admin)",
            &Stub::UpdateSecuritySettings),
      Unary("get-security-overview", "the fleet's security posture in figures (viewer)",
            &Stub::GetSecurityOverview),
      Unary("list-security-events", "security events, newest first (viewer)",
            &Stub::ListSecurityEvents),
      Unary("verify-audit-trail", "verify the audit trail's chain; exit 3 if broken (admin)",
            &Stub::VerifyAuditTrail),
      Unary("logout", "end the session of a refresh token", &Stub::Logout),
      Unary("refresh", "exchange a refresh token for new tokens (prints both)", &Stub::Refresh),
  };
  for (auto& m : *methods) m.needs_token = m.name != "refresh";
  return *methods;
}

const Method* FindMethod(const std::string& name) {
  for (const auto& m : Methods()) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

// Options every command understands.
struct Options {
  std::string server = Env::Optional("REDFLAG_SERVER", "localhost:8443");
  std::string ca_file = Env::Optional("REDFLAG_CA_FILE", ".dev/pki/public-ca.crt");
  std::string user = "admin";
  bool json = false;
  bool ids = false;
  bool help = false;
};

int StatusExit(const std::string& what, const grpc::Status& s, std::ostream& err) {
  auto code = static_cast<absl::StatusCode>(s.error_code());
  err << what << ": " << absl::StatusCodeToString(code) << ": " << s.error_message() << "\n";
  switch (s.error_code()) {
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
      return kAuthentication;
    case grpc::StatusCode::NOT_FOUND:
      return kNotFound;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::ALREADY_EXISTS:
      return kUsage;
    default:
      return kServerError;
  }
}

std::string TokenPath() {
  std::string base = Env::Optional("XDG_CONFIG_HOME", "");
  if (base.empty()) base = Env::Optional("HOME", ".") + "/.config";
  return base + "/redflag/token";
}

std::string SessionToken() {
  std::string t = Env::Optional("REDFLAG_TOKEN", "");
  if (!t.empty()) return t;
  std::ifstream in(TokenPath());
  std::getline(in, t);
  return t;
}

// Writes the token readable by its owner only (the directory too).
absl::Status SaveToken(const std::string& token) {
  std::filesystem::path p(TokenPath());
  std::error_code ec;
  std::filesystem::create_directories(p.parent_path(), ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", p.parent_path().string()));
  chmod(p.parent_path().c_str(), 0700);
  int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot write ", p.string()));
  fchmod(fd, 0600);
  std::string line = token + "\n";
  bool ok = write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  close(fd);
  return ok ? absl::OkStatus() : absl::InternalError(absl::StrCat("cannot write ", p.string()));
}

// A RateLimitSetting field: given and shown as RATE:BURST.
bool IsRateLimit(const pb::FieldDescriptor* f) {
  return !f->is_repeated() && f->message_type() == v1::RateLimitSetting::descriptor();
}

// --field=value (or --field value, or a bare --flag for a bool) into the request.
absl::Status SetField(pb::Message& msg, const std::string& raw_name,
                      const std::optional<std::string>& value) {
  std::string name = absl::StrReplaceAll(raw_name, {{"-", "_"}});
  const pb::FieldDescriptor* f = msg.GetDescriptor()->FindFieldByName(name);
  if (f == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("unknown option --", raw_name));
  }
  const pb::Reflection* r = msg.GetReflection();
  if (IsRateLimit(f)) {
    if (!value) return absl::InvalidArgumentError(absl::StrCat("--", raw_name, " needs a value"));
    absl::StatusOr<v1::RateLimitSetting> limit = ParseRateLimit("--" + raw_name, *value);
    if (!limit.ok()) return limit.status();
    r->MutableMessage(&msg, f)->CopyFrom(*limit);
    return absl::OkStatus();
  }
  if (f->is_repeated() || f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", raw_name, " cannot be given on the command line"));
  }
  if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_BOOL) {
    std::string v = absl::AsciiStrToLower(value.value_or("true"));
    if (v == "true" || v == "yes" || v == "1") {
      r->SetBool(&msg, f, true);
    } else if (v == "false" || v == "no" || v == "0") {
      r->SetBool(&msg, f, false);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--", raw_name, " takes true or false"));
    }
    return absl::OkStatus();
  }
  if (!value) return absl::InvalidArgumentError(absl::StrCat("--", raw_name, " needs a value"));
  const std::string& v = *value;
  auto number = [&](auto* out) -> absl::Status {
    if (!absl::SimpleAtoi(v, out)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", raw_name, " takes a number, not \"", v.substr(0, 40), "\""));
    }
    return absl::OkStatus();
  };
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_STRING:
      r->SetString(&msg, f, v);
      break;
    case pb::FieldDescriptor::CPPTYPE_INT32: {
      int32_t n = 0;
      if (absl::Status s = number(&n); !s.ok()) return s;
      r->SetInt32(&msg, f, n);
      break;
    }
    case pb::FieldDescriptor::CPPTYPE_INT64: {
      int64_t n = 0;
      if (absl::Status s = number(&n); !s.ok()) return s;
      r->SetInt64(&msg, f, n);
      break;
    }
    case pb::FieldDescriptor::CPPTYPE_ENUM: {
      const pb::EnumDescriptor* e = f->enum_type();
      std::string upper = absl::AsciiStrToUpper(absl::StrReplaceAll(v, {{"-", "_"}}));
      const pb::EnumValueDescriptor* ev = e->FindValueByName(upper);
      std::vector<std::string> names;
      for (int i = 0; i < e->value_count(); ++i) {
        if (e->value(i)->number() == 0) continue;
        names.push_back(absl::AsciiStrToLower(e->value(i)->name()));
      }
      if (ev == nullptr || ev->number() == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", raw_name, " is one of ", absl::StrJoin(names, ", ")));
      }
      r->SetEnum(&msg, f, ev);
      break;
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat("--", raw_name, " has an unsupported type"));
  }
  return absl::OkStatus();
}

std::string FieldText(const pb::Message& m, const pb::FieldDescriptor* f) {
  const pb::Reflection* r = m.GetReflection();
  if (f->is_repeated()) {
    std::vector<std::string> parts;
    for (int i = 0; i < r->FieldSize(m, f); ++i) {
      switch (f->cpp_type()) {
        case pb::FieldDescriptor::CPPTYPE_STRING:
          parts.push_back(r->GetRepeatedString(m, f, i));
          break;
        case pb::FieldDescriptor::CPPTYPE_MESSAGE:
          parts.push_back(r->GetRepeatedMessage(m, f, i).ShortDebugString());
          break;
        default:
          parts.emplace_back("...");
      }
    }
    return absl::StrJoin(parts, ",");
  }
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_STRING:
      return r->GetString(m, f);
    case pb::FieldDescriptor::CPPTYPE_INT32:
      return std::to_string(r->GetInt32(m, f));
    case pb::FieldDescriptor::CPPTYPE_INT64:
      return std::to_string(r->GetInt64(m, f));
    case pb::FieldDescriptor::CPPTYPE_UINT32:
      return std::to_string(r->GetUInt32(m, f));
    case pb::FieldDescriptor::CPPTYPE_UINT64:
      return std::to_string(r->GetUInt64(m, f));
    case pb::FieldDescriptor::CPPTYPE_BOOL:
      return r->GetBool(m, f) ? "true" : "false";
    case pb::FieldDescriptor::CPPTYPE_ENUM:
      return absl::AsciiStrToLower(r->GetEnum(m, f)->name());
    case pb::FieldDescriptor::CPPTYPE_MESSAGE: {
      if (!r->HasField(m, f)) return "";
      const pb::Message& sub = r->GetMessage(m, f);
      if (IsRateLimit(f)) {
        v1::RateLimitSetting limit;
        limit.CopyFrom(sub);
        return RateLimitText(limit);
      }
      if (sub.GetDescriptor() == pb::Timestamp::descriptor()) {
        pb::Timestamp ts;
        ts.CopyFrom(sub);
        return pb::util::TimeUtil::ToString(ts);
      }
      return sub.ShortDebugString();
    }
    default:
      return "";
  }
}

// The first repeated message field of a reply: what a list command lists.
const pb::FieldDescriptor* ListField(const pb::Descriptor* d) {
  for (int i = 0; i < d->field_count(); ++i) {
    const pb::FieldDescriptor* f = d->field(i);
    if (f->is_repeated() && f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) return f;
  }
  return nullptr;
}

// The object's id: its own id field, else that of the first nested object that has one
// (an update's id is in its manifest).
std::string IdOf(const pb::Message& m) {
  for (const char* name : {"id", "update_id", "key_id", "delivery_id"}) {
    const pb::FieldDescriptor* f = m.GetDescriptor()->FindFieldByName(name);
    if (f != nullptr && !f->is_repeated() && f->cpp_type() == pb::FieldDescriptor::CPPTYPE_STRING) {
      return m.GetReflection()->GetString(m, f);
    }
  }
  std::vector<const pb::FieldDescriptor*> fields;
  m.GetReflection()->ListFields(m, &fields);
  for (const auto* f : fields) {
    if (f->is_repeated() || f->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE) continue;
    std::string id = IdOf(m.GetReflection()->GetMessage(m, f));
    if (!id.empty()) return id;
  }
  return "";
}

void PrintTable(const pb::Message& reply, const pb::FieldDescriptor* list, std::ostream& out) {
  const pb::Reflection* r = reply.GetReflection();
  int rows = r->FieldSize(reply, list);
  const pb::Descriptor* d = list->message_type();
  std::vector<const pb::FieldDescriptor*> cols;
  std::vector<size_t> width;
  std::vector<std::vector<std::string>> cells(rows);
  for (int i = 0; i < d->field_count(); ++i) {
    const pb::FieldDescriptor* f = d->field(i);
    if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE &&
        f->message_type() != pb::Timestamp::descriptor()) {
      continue;  // nested objects: --json shows them
    }
    std::vector<std::string> col;
    bool any = false;
    for (int row = 0; row < rows; ++row) {
      col.push_back(Printable(FieldText(r->GetRepeatedMessage(reply, list, row), f), 40));
      any |= !col.back().empty() && col.back() != "0" && col.back() != "false";
    }
    if (!any && rows > 0) continue;  // a column with nothing to say
    std::string head = absl::AsciiStrToUpper(f->name());
    size_t w = head.size();
    for (int row = 0; row < rows; ++row) {
      w = std::max(w, col[row].size());
      cells[row].push_back(col[row]);
    }
    cols.push_back(f);
    width.push_back(w);
  }
  for (size_t c = 0; c < cols.size(); ++c) {
    std::string head = absl::AsciiStrToUpper(cols[c]->name());
    out << head << std::string(width[c] - head.size() + 2, ' ');
  }
  out << "\n";
  for (int row = 0; row < rows; ++row) {
    for (size_t c = 0; c < cols.size(); ++c) {
      out << cells[row][c] << std::string(width[c] - cells[row][c].size() + 2, ' ');
    }
    out << "\n";
  }
  // What the reply says besides the list (counts, totals).
  for (int i = 0; i < reply.GetDescriptor()->field_count(); ++i) {
    const pb::FieldDescriptor* f = reply.GetDescriptor()->field(i);
    if (f == list || f->name() == "next_page_token") continue;
    std::string v = FieldText(reply, f);
    if (!v.empty() && v != "0") out << f->name() << ": " << Printable(v, 200) << "\n";
  }
}

void PrintObject(const pb::Message& m, std::ostream& out) {
  std::vector<const pb::FieldDescriptor*> fields;
  m.GetReflection()->ListFields(m, &fields);
  for (const auto* f : fields) {
    if (absl::StartsWith(f->name(), "signed_")) continue;  // signatures and payloads: --json
    out << f->name() << ": " << Printable(FieldText(m, f), 200) << "\n";
  }
}

void PrintJson(const pb::Message& m, std::ostream& out) {
  std::string json;
  pb::util::JsonPrintOptions o;
  o.add_whitespace = true;
  (void)pb::util::MessageToJsonString(m, &json, o);
  out << json;
}

void Print(const pb::Message& m, const Options& o, std::ostream& out) {
  const pb::FieldDescriptor* list = ListField(m.GetDescriptor());
  if (o.ids) {
    if (list != nullptr) {
      for (int i = 0; i < m.GetReflection()->FieldSize(m, list); ++i) {
        out << IdOf(m.GetReflection()->GetRepeatedMessage(m, list, i)) << "\n";
      }
    } else {
      out << IdOf(m) << "\n";
    }
  } else if (o.json) {
    PrintJson(m, out);
  } else if (m.GetDescriptor() == v1::Rollout::descriptor()) {
    PrintRollout(static_cast<const v1::Rollout&>(m), out);
  } else if (list != nullptr) {
    PrintTable(m, list, out);
  } else {
    PrintObject(m, out);
  }
}

std::string TypeName(const pb::FieldDescriptor* f) {
  if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_ENUM) {
    std::vector<std::string> names;
    for (int i = 0; i < f->enum_type()->value_count(); ++i) {
      if (f->enum_type()->value(i)->number() != 0) {
        names.push_back(absl::AsciiStrToLower(f->enum_type()->value(i)->name()));
      }
    }
    return absl::StrJoin(names, "|");
  }
  if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_BOOL) return "true|false";
  if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_STRING) return "text";
  if (IsRateLimit(f)) return "RATE:BURST";
  return "number";
}

constexpr char kGlobalHelp[] =
    "global options: --server=HOST:PORT (REDFLAG_SERVER, localhost:8443), --ca_file=PEM\n"
    "  (REDFLAG_CA_FILE, .dev/pki/public-ca.crt), --json, --ids (only the ids of what is\n"
    "  printed, one per line), --help\n"
    "exit codes: 0 done, 1 server error, 2 usage or refused input, 3 audit chain broken,\n"
    "  4 not logged in or not allowed, 5 not found\n";

void CommandHelp(const Method& m, std::ostream& out) {
  out << "redflagctl " << m.name << ": " << m.help << "\n";
  auto req = m.request();
  const pb::Descriptor* d = req->GetDescriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const pb::FieldDescriptor* f = d->field(i);
    if (!IsRateLimit(f) &&
        (f->is_repeated() || f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE)) {
      continue;
    }
    out << "  --" << f->name() << "=" << TypeName(f) << "\n";
  }
  if (d->FindFieldByName("page_token") != nullptr) {
    out << "  (every page is fetched unless --page_size or --page_token is given)\n";
  }
  out << kGlobalHelp;
}

void Usage(std::ostream& out) {
  out << "usage: redflagctl [global options] COMMAND [--option=value ...]\n"
         "commands:\n"
         "  login                 log in (--user, password from REDFLAG_PASSWORD or stdin);\n"
         "                        the token is kept 0600 in "
      << TokenPath()
      << " and printed\n"
         "  publish-update        publish a file: --file --name --version --platform --channel\n"
         "                        [--kind=package|agent] [--rollout-plan=plan.json]\n";
  for (const auto& m : Methods()) {
    out << "  " << m.name << std::string(m.name.size() < 22 ? 22 - m.name.size() : 1, ' ') << m.help
        << "\n";
  }
  out << "  create-token SEATS [LABEL], list-tokens, signing-keys, revoke-key KEY_ID REASON,\n"
         "  verify-audit [FROM [TO]]: short forms kept from earlier versions\n"
      << kGlobalHelp << "'redflagctl COMMAND --help' lists a command's options.\n";
}

struct Parsed {
  Options opts;
  std::string command;
  std::vector<std::string> positional;
  std::vector<std::pair<std::string, std::optional<std::string>>> fields;
};

// Splits the command line; global options are recognised anywhere.
absl::StatusOr<Parsed> Parse(const std::vector<std::string>& args) {
  Parsed p;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      p.opts.help = true;
      continue;
    }
    if (!absl::StartsWith(a, "--")) {
      if (p.command.empty()) {
        p.command = a;
      } else {
        p.positional.push_back(a);
      }
      continue;
    }
    std::string name = a.substr(2);
    std::optional<std::string> value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    std::string key = absl::StrReplaceAll(name, {{"-", "_"}});
    if (key == "json" || key == "ids") {
      (key == "json" ? p.opts.json : p.opts.ids) = true;
      continue;
    }
    if (key == "server" || key == "ca_file" || key == "user") {
      if (!value && i + 1 < args.size()) value = args[++i];
      if (!value) return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
      (key == "server" ? p.opts.server : key == "ca_file" ? p.opts.ca_file : p.opts.user) = *value;
      continue;
    }
    // A request option: its value is the next word unless it is another option.
    if (!value && i + 1 < args.size() && !absl::StartsWith(args[i + 1], "--")) {
      value = args[++i];
    }
    p.fields.emplace_back(name, value);
  }
  return p;
}

class Client {
 public:
  Client(const Options& o, const std::shared_ptr<grpc::ChannelCredentials>& creds)
      : stub_(v1::OperatorService::NewStub(MakeChannel(o.server, creds))) {}
  Stub& stub() { return *stub_; }
  std::unique_ptr<grpc::ClientContext> Context(bool authorized) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    if (authorized) ctx->AddMetadata("authorization", absl::StrCat("Bearer ", SessionToken()));
    return ctx;
  }

 private:
  std::unique_ptr<Stub> stub_;
};

// Calls `m`, walking every page of a list unless the caller asked for one page.
int CallMethod(Client& client, const Method& m, pb::Message& req, const Options& o,
               std::ostream& out, std::ostream& err, bool one_page) {
  auto all = m.response();
  const pb::FieldDescriptor* token_in = req.GetDescriptor()->FindFieldByName("page_token");
  const pb::FieldDescriptor* token_out = all->GetDescriptor()->FindFieldByName("next_page_token");
  const pb::FieldDescriptor* size = req.GetDescriptor()->FindFieldByName("page_size");
  bool paging = token_in != nullptr && token_out != nullptr && !one_page;
  if (paging && size != nullptr) req.GetReflection()->SetInt32(&req, size, 1000);
  while (true) {
    auto page = m.response();
    auto ctx = client.Context(true);
    grpc::Status s = m.call(client.stub(), ctx.get(), req, page.get());
    if (!s.ok()) return StatusExit(m.name, s, err);
    all->MergeFrom(*page);
    if (!paging) break;
    std::string next = page->GetReflection()->GetString(*page, token_out);
    if (next.empty()) break;
    req.GetReflection()->SetString(&req, token_in, next);
  }
  if (paging) all->GetReflection()->ClearField(all.get(), token_out);
  Print(*all, o, out);
  if (auto* v = dynamic_cast<v1::AuditVerification*>(all.get()); v != nullptr && !v->intact()) {
    return kAuditBroken;
  }
  return kOk;
}

int Login(Client& client, const Options& o, std::ostream& out, std::ostream& err) {
  std::string password = Env::Optional("REDFLAG_PASSWORD", "");
  if (password.empty()) password = Env::Optional("REDFLAG_ADMIN_PASSWORD", "");
  if (password.empty()) std::getline(std::cin, password);
  v1::LoginRequest req;
  req.set_username(o.user);
  req.set_password(password);
  v1::TokenPair resp;
  auto ctx = client.Context(false);
  grpc::Status s = client.stub().Login(ctx.get(), req, &resp);
  if (!s.ok()) return StatusExit("login", s, err);
  if (absl::Status saved = SaveToken(resp.access_token()); !saved.ok()) {
    err << "login: " << saved.message() << "\n";
    return kServerError;
  }
  out << resp.access_token() << "\n";
  return kOk;
}

// Reads a rollout plan (RolloutPlan as protobuf JSON, field names as in updates.proto)
// from `path` into the publication's header. The service validates the plan's rules.
absl::Status ReadRolloutPlan(const std::string& path, v1::PublishUpdateChunk::Header& h) {
  constexpr std::streamsize kMaxPlanBytes = std::streamsize{256} * 1024;
  std::ifstream in(path, std::ios::binary);
  if (path.empty() || !in) {
    return absl::InvalidArgumentError("--rollout-plan must name a readable JSON file");
  }
  std::string json(static_cast<size_t>(kMaxPlanBytes) + 1, '\0');
  in.read(json.data(), kMaxPlanBytes + 1);
  if (in.gcount() > kMaxPlanBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("--rollout-plan ", path, " is larger than ", kMaxPlanBytes, " bytes"));
  }
  json.resize(static_cast<size_t>(in.gcount()));
  auto parsed = google::protobuf::util::JsonStringToMessage(json, h.mutable_rollout());
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--rollout-plan ", path, " is not a RolloutPlan in JSON: ", parsed.message().ToString()));
  }
  return absl::OkStatus();
}

int Publish(Client& client, const Parsed& p, std::ostream& out, std::ostream& err) {
  v1::PublishUpdateChunk header;
  std::string file;
  for (const auto& [name, value] : p.fields) {
    if (name == "file") {
      file = value.value_or("");
      continue;
    }
    if (absl::StrReplaceAll(name, {{"-", "_"}}) == "rollout_plan") {
      if (absl::Status s = ReadRolloutPlan(value.value_or(""), *header.mutable_header()); !s.ok()) {
        err << "publish-update: " << s.message() << "\n";
        return kUsage;
      }
      continue;
    }
    if (absl::Status s = SetField(*header.mutable_header(), name, value); !s.ok()) {
      err << "publish-update: " << s.message() << "\n";
      return kUsage;
    }
  }
  std::ifstream in(file, std::ios::binary);
  if (file.empty() || !in) {
    err << "publish-update: --file must name a readable file\n";
    return kUsage;
  }
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  v1::PublishUpdateChunk::Header* h = header.mutable_header();
  h->set_size(static_cast<int64_t>(bytes.size()));
  if (h->kind() == v1::UPDATE_KIND_UNSPECIFIED) h->set_kind(v1::PACKAGE);
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::hours(1));
  ctx->AddMetadata("authorization", absl::StrCat("Bearer ", SessionToken()));
  v1::Update resp;
  auto writer = client.stub().PublishUpdate(ctx.get(), &resp);
  bool ok = writer->Write(header);
  const bool tty = isatty(2) == 1;
  constexpr size_t kChunk = size_t{1} << 20;
  for (size_t off = 0; ok && off < bytes.size(); off += kChunk) {
    v1::PublishUpdateChunk data;
    data.set_data(bytes.substr(off, kChunk));
    ok = writer->Write(data);
    size_t sent = std::min(bytes.size(), off + kChunk);
    if (tty) {
      int pct =
          static_cast<int>(100.0 * static_cast<double>(sent) / static_cast<double>(bytes.size()));
      err << "\rpublishing " << file << ": " << sent / 1024 << "/" << bytes.size() / 1024
          << " KiB [" << std::string(pct / 5, '#') << std::string(20 - pct / 5, ' ') << "] " << pct
          << "%" << std::flush;
    }
  }
  if (tty) err << "\n";
  writer->WritesDone();
  grpc::Status s = writer->Finish();
  if (!s.ok()) return StatusExit("publish-update", s, err);
  Options o = p.opts;
  Print(resp, o, out);
  return kOk;
}

// The short forms earlier versions had, rewritten into commands.
std::optional<int> ShortForm(Parsed& p, std::ostream& err) {
  auto need = [&](size_t n, const char* usage) -> std::optional<int> {
    if (p.positional.size() < n) {
      err << "usage: redflagctl " << usage << "\n";
      return kUsage;
    }
    return std::nullopt;
  };
  if (p.command == "list-tokens") p.command = "list-registration-tokens";
  if (p.command == "signing-keys") p.command = "list-signing-keys";
  if (p.command == "revoke-key") {
    if (auto e = need(2, "revoke-key KEY_ID REASON")) return e;
    p.command = "revoke-signing-key";
    p.fields.emplace_back("key_id", p.positional[0]);
    p.fields.emplace_back("reason", p.positional[1]);
  }
  if (p.command == "verify-audit") {
    p.command = "verify-audit-trail";
    if (p.positional.size() > 0) p.fields.emplace_back("from_id", p.positional[0]);
    if (p.positional.size() > 1) p.fields.emplace_back("to_id", p.positional[1]);
  }
  return std::nullopt;
}

}  // namespace

int Run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  absl::StatusOr<Parsed> parsed = Parse(args);
  if (!parsed.ok()) {
    err << parsed.status().message() << "\n";
    return kUsage;
  }
  Parsed& p = *parsed;
  if (p.command.empty()) {
    Usage(p.opts.help ? out : err);
    return p.opts.help ? kOk : kUsage;
  }
  if (std::optional<int> e = ShortForm(p, err)) return *e;
  const Method* m = FindMethod(p.command);
  const bool special =
      p.command == "login" || p.command == "publish-update" || p.command == "create-token";
  if (m == nullptr && !special) {
    err << "unknown command \"" << Printable(p.command, 60)
        << "\" ('redflagctl --help' lists them)\n";
    return kUsage;
  }
  if (p.opts.help) {
    if (m != nullptr) {
      CommandHelp(*m, out);
    } else if (p.command == "login") {
      out << "redflagctl login: log in as --user (admin); the password comes from "
             "REDFLAG_PASSWORD (or REDFLAG_ADMIN_PASSWORD), else the first line of standard "
             "input; the token is kept 0600 in "
          << TokenPath() << " (XDG_CONFIG_HOME moves it) and printed\n"
          << kGlobalHelp;
    } else if (p.command == "publish-update") {
      out << "redflagctl publish-update: publish a file (a progress bar on a terminal)\n"
             "  --file=path --name=text --version=text --platform=text --channel=text\n"
             "  --kind=package|agent (package)\n"
             "  --rollout-plan=plan.json  offer it stage by stage: a RolloutPlan in JSON, e.g.\n"
             "    {\"stages\": [{\"name\": \"canary\", \"percent\": 10, \"success_percent\": 100,\n"
             "      \"halt_after_failures\": 1, \"soak_seconds\": 600},\n"
             "     {\"name\": \"all\", \"percent\": 100, \"success_percent\": 95,\n"
             "      \"halt_failure_percent\": 5, \"wait_for_approval\": true}]}\n"
             "    without one, every matching agent is offered it at once\n"
          << kGlobalHelp;
    } else {
      out << "redflagctl create-token: SEATS [LABEL]; prints only the secret\n" << kGlobalHelp;
    }
    return kOk;
  }
  absl::StatusOr<std::string> ca = ReadPemFile(p.opts.ca_file, "CA certificate");
  if (!ca.ok()) {
    err << ca.status().message() << " (give --ca_file or REDFLAG_CA_FILE)\n";
    return kUsage;
  }
  Client client(p.opts, TlsChannelCredentials(*ca));
  if (p.command == "login") return Login(client, p.opts, out, err);
  if ((m == nullptr || m->needs_token) && SessionToken().empty()) {
    err << p.command << ": not logged in: run 'redflagctl login' or set REDFLAG_TOKEN\n";
    return kAuthentication;
  }
  if (p.command == "publish-update") return Publish(client, p, out, err);
  if (p.command == "create-token") {
    // Short form: SEATS [LABEL]; prints only the secret (for scripts).
    int seats = 0;
    if (p.positional.empty() || !absl::SimpleAtoi(p.positional[0], &seats)) {
      err << "usage: redflagctl create-token SEATS [LABEL]\n";
      return kUsage;
    }
    v1::CreateRegistrationTokenRequest req;
    req.set_seats(seats);
    req.set_label(p.positional.size() > 1 ? p.positional[1] : "redflagctl");
    v1::CreateRegistrationTokenResponse resp;
    auto ctx = client.Context(true);
    grpc::Status s = client.stub().CreateRegistrationToken(ctx.get(), req, &resp);
    if (!s.ok()) return StatusExit("create-token", s, err);
    out << resp.secret() << "\n";
    return kOk;
  }
  auto req = m->request();
  bool one_page = false;
  for (const auto& [name, value] : p.fields) {
    if (absl::Status s = SetField(*req, name, value); !s.ok()) {
      err << m->name << ": " << s.message() << " ('redflagctl " << m->name
          << " --help' lists its options)\n";
      return kUsage;
    }
    std::string key = absl::StrReplaceAll(name, {{"-", "_"}});
    one_page |= key == "page_size" || key == "page_token" || key == "limit";
  }
  return CallMethod(client, *m, *req, p.opts, out, err, one_page);
}

}  // namespace redflag::ctl
