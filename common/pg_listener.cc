#include "common/pg_listener.h"

#include <libpq-fe.h>
#include <poll.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/pg.h"

namespace redflag {
namespace {

PGconn* Open(const DbConfig& c) {
  const char* keys[] = {"host",     "port",    "dbname",          "user",
                        "password", "sslmode", "connect_timeout", "application_name",
                        nullptr};
  const char* vals[] = {c.host.c_str(), c.port.c_str(),     c.dbname.c_str(),
                        c.user.c_str(), c.password.c_str(), c.sslmode.c_str(),
                        "10",           "redflag-listen",   nullptr};
  PGconn* conn = PQconnectdbParams(keys, vals, 0);
  if (PQstatus(conn) != CONNECTION_OK) {
    PQfinish(conn);
    return nullptr;
  }
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  return conn;
}

}  // namespace

PgListener::PgListener(DbConfig config, std::string channel, Callback callback)
    : config_(std::move(config)), channel_(std::move(channel)), callback_(std::move(callback)) {}

PgListener::~PgListener() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (conn_ != nullptr) PQfinish(static_cast<PGconn*>(conn_));
}

bool PgListener::Connect() {
  if (conn_ != nullptr) PQfinish(static_cast<PGconn*>(conn_));
  conn_ = Open(config_);
  if (conn_ == nullptr) return false;
  // The channel is a constant of the calling service, never user input.
  PGresult* r = PQexec(static_cast<PGconn*>(conn_), absl::StrCat("LISTEN ", channel_).c_str());
  bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  PQclear(r);
  return ok;
}

absl::Status PgListener::Start() {
  if (!Connect()) {
    return absl::UnavailableError(
        absl::StrCat("cannot LISTEN on ", channel_, " at ", config_.host, ":", config_.port));
  }
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void PgListener::Loop() {
  int backoff_ms = 100;
  while (!stop_) {
    auto* conn = static_cast<PGconn*>(conn_);
    if (conn == nullptr || PQstatus(conn) != CONNECTION_OK) {
      if (Connect()) {
        LogInfo(absl::StrCat("LISTEN ", channel_, " re-established"));
        backoff_ms = 100;
        callback_("");  // notifications may have been missed
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
        backoff_ms = std::min(backoff_ms * 2, 5000);
      }
      continue;
    }
    pollfd pfd{PQsocket(conn), POLLIN, 0};
    // Wakes on data; the timeout only bounds how long a stop request waits.
    int ready = poll(&pfd, 1, 500);
    if (ready < 0) continue;
    if (ready > 0 && PQconsumeInput(conn) == 0) {
      LogWarn(absl::StrCat("LISTEN ", channel_, " connection lost: ", PQerrorMessage(conn)));
      PQfinish(conn);
      conn_ = nullptr;
      continue;
    }
    while (PGnotify* n = PQnotifies(conn)) {
      std::string payload = n->extra ? n->extra : "";
      PQfreemem(n);
      callback_(payload);
    }
  }
}

absl::Status Notify(PgConnection& conn, const std::string& channel, const std::string& payload) {
  static constexpr Statement kNotify{"redflag_notify", "SELECT pg_notify($1, $2)"};
  return conn.Exec(kNotify, {channel, payload}).status();
}

}  // namespace redflag
