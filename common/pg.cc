#include "common/pg.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/log.h"
#include "common/status.h"

namespace redflag {

int PgResult::AffectedRows() const {
  int n = 0;
  return absl::SimpleAtoi(PQcmdTuples(r_.get()), &n) ? n : 0;
}

std::string PgResult::Text(int row, int col) const {
  return std::string(PQgetvalue(r_.get(), row, col),
                     static_cast<size_t>(PQgetlength(r_.get(), row, col)));
}

int64_t PgResult::Int(int row, int col) const {
  int64_t v = 0;
  (void)absl::SimpleAtoi(PQgetvalue(r_.get(), row, col), &v);
  return v;
}

bool PgResult::Bool(int row, int col) const { return PQgetvalue(r_.get(), row, col)[0] == 't'; }

absl::Time PgResult::TimeFromMicros(int row, int col) const {
  if (IsNull(row, col)) return absl::InfinitePast();
  return absl::FromUnixMicros(Int(row, col));
}

absl::Status SqlStateToStatus(absl::string_view sqlstate, absl::string_view detail) {
  if (sqlstate == "23505") return absl::AlreadyExistsError("record already exists");
  if (sqlstate == "40001" || sqlstate == "40P01") {
    return absl::AbortedError("transaction conflict, retry");
  }
  // 08: connection exception; 57P01-57P03: the server is shutting down, crashed or starting.
  if (sqlstate.substr(0, 2) == "08" || sqlstate == "57P01" || sqlstate == "57P02" ||
      sqlstate == "57P03") {
    return absl::UnavailableError("database unavailable");
  }
  if (sqlstate == "57014") return absl::DeadlineExceededError("database statement timed out");
  if (sqlstate.substr(0, 2) == "22") {
    return absl::InvalidArgumentError("malformed value in request");
  }
  LogError(absl::StrCat("database error ", sqlstate, ": ", detail));
  return absl::InternalError("internal database error");
}

PgConnection::~PgConnection() { PQfinish(conn_); }

bool PgConnection::EnsureHealthy() {
  if (PQstatus(conn_) == CONNECTION_OK) return true;
  PQreset(conn_);
  prepared_.clear();
  return PQstatus(conn_) == CONNECTION_OK;
}

absl::Status PgConnection::ResultStatus(const PGresult* r, absl::string_view what) {
  if (r == nullptr) return absl::UnavailableError("database connection lost");
  ExecStatusType st = PQresultStatus(r);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return absl::OkStatus();
  const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  std::string detail = absl::StrCat(what, ": ", PQresultErrorMessage(r));
  return SqlStateToStatus(state ? state : "08000", detail);
}

absl::StatusOr<PgResult> PgConnection::Exec(const Statement& stmt, const Params& params) {
  return ExecBinary(stmt, params, {}, /*binary_result=*/false);
}

absl::StatusOr<PgResult> PgConnection::ExecBinary(const Statement& stmt, const Params& params,
                                                  const std::vector<bool>& binary_params,
                                                  bool binary_result) {
  const bool prepared = stmt.planning == Planning::kPrepared;
  if (prepared && prepared_.count(stmt.name) == 0) {
    PgResult prep(PQprepare(conn_, stmt.name, stmt.sql, 0, nullptr));
    REDFLAG_RETURN_IF_ERROR(ResultStatus(prep.raw(), absl::StrCat("prepare ", stmt.name)));
    prepared_.insert(stmt.name);
  }
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& p = params[i];
    values.push_back(p ? p->data() : nullptr);
    lengths.push_back(p ? static_cast<int>(p->size()) : 0);
    formats.push_back(i < binary_params.size() && binary_params[i] ? 1 : 0);
  }
  const int n = static_cast<int>(values.size());
  PgResult r(prepared ? PQexecPrepared(conn_, stmt.name, n, values.data(), lengths.data(),
                                       formats.data(), binary_result ? 1 : 0)
                      : PQexecParams(conn_, stmt.sql, n, nullptr, values.data(), lengths.data(),
                                     formats.data(), binary_result ? 1 : 0));
  REDFLAG_RETURN_IF_ERROR(Track(ResultStatus(r.raw(), stmt.name)));
  return r;
}

absl::Status PgConnection::ExecScript(absl::string_view sql) {
  PgResult r(PQexec(conn_, std::string(sql).c_str()));
  return Track(ResultStatus(r.raw(), "script"));
}

absl::StatusOr<std::unique_ptr<PgPool>> PgPool::Connect(const DbConfig& c) {
  auto pool = std::make_unique<PgPool>();
  const std::string timeout = "10";
  // Keepalives: probe an idle connection after 30 s, every 10 s, give up after 3 misses.
  const char* keys[] = {"host",
                        "port",
                        "dbname",
                        "user",
                        "password",
                        "sslmode",
                        "connect_timeout",
                        "application_name",
                        "keepalives",
                        "keepalives_idle",
                        "keepalives_interval",
                        "keepalives_count",
                        nullptr};
  const char* vals[] = {c.host.c_str(),
                        c.port.c_str(),
                        c.dbname.c_str(),
                        c.user.c_str(),
                        c.password.c_str(),
                        c.sslmode.c_str(),
                        timeout.c_str(),
                        c.application_name.c_str(),
                        "1",
                        "30",
                        "10",
                        "3",
                        nullptr};
  for (int i = 0; i < c.pool_size; ++i) {
    PGconn* conn = PQconnectdbParams(keys, vals, 0);
    if (PQstatus(conn) != CONNECTION_OK) {
      std::string why = PQerrorMessage(conn);
      PQfinish(conn);
      // The libpq message names host and port and the reason; it never contains the password.
      return absl::UnavailableError(absl::StrCat("cannot connect to PostgreSQL at ", c.host, ":",
                                                 c.port, "/", c.dbname, " as ", c.user, ": ", why));
    }
    // Server NOTICEs ("already exists, skipping") are not errors; keep them out of the logs.
    PQsetNoticeProcessor(
        conn, [](void*, const char*) {}, nullptr);
    pool->idle_.push_back(std::make_unique<PgConnection>(conn));
  }
  return pool;
}

absl::Status PgPool::WithConnection(const std::function<absl::Status(PgConnection&)>& fn,
                                    absl::Duration wait) {
  std::unique_ptr<PgConnection> conn;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, absl::ToChronoMilliseconds(wait), [&] { return !idle_.empty(); })) {
      return absl::UnavailableError("no database connection free; the service is overloaded");
    }
    conn = std::move(idle_.back());
    idle_.pop_back();
  }
  absl::Status s = absl::UnavailableError("database connection lost");
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!conn->EnsureHealthy()) break;
    conn->BeginUse();
    s = fn(*conn);
    if (s.ok() || !conn->LostBeforeAnyWork()) break;
    reconnects_.fetch_add(1, std::memory_order_relaxed);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    idle_.push_back(std::move(conn));
  }
  cv_.notify_one();
  return s;
}

absl::Status PgPool::InTransaction(const std::function<absl::Status(PgConnection&)>& fn,
                                   absl::Duration wait) {
  return WithConnection(
      [&](PgConnection& conn) {
        REDFLAG_RETURN_IF_ERROR(conn.ExecScript("BEGIN"));
        absl::Status s = fn(conn);
        if (!s.ok()) {
          (void)conn.ExecScript("ROLLBACK");
          return s;
        }
        return conn.ExecScript("COMMIT");
      },
      wait);
}

absl::StatusOr<int64_t> AppliedMigrations(PgConnection& conn, absl::string_view schema) {
  // `schema` is a compile-time constant of the calling service, never user input.
  PgResult r(PQexec(conn.raw(), absl::StrCat("SELECT coalesce(max(version), 0) FROM ", schema,
                                             ".schema_migrations")
                                    .c_str()));
  if (PQresultStatus(r.raw()) != PGRES_TUPLES_OK) {
    const char* state = PQresultErrorField(r.raw(), PG_DIAG_SQLSTATE);
    if (state != nullptr && std::string(state) == "42501") {
      return absl::PermissionDeniedError(
          absl::StrCat("may not read ", schema, ".schema_migrations"));
    }
    return absl::FailedPreconditionError(absl::StrCat(schema, ".schema_migrations does not exist"));
  }
  return r.Int(0, 0);
}

absl::Status ApplyMigrations(PgPool& pool, absl::string_view schema,
                             const std::vector<std::string>& steps) {
  // `schema` is a compile-time constant of the calling service, never user input.
  return pool.InTransaction([&](PgConnection& conn) -> absl::Status {
    // Serialises concurrent starts of any service's replicas until this commit.
    REDFLAG_RETURN_IF_ERROR(conn.ExecScript("SELECT pg_advisory_xact_lock(7242683151)"));
    REDFLAG_RETURN_IF_ERROR(conn.ExecScript(absl::StrCat(
        "CREATE SCHEMA IF NOT EXISTS ", schema, "; CREATE TABLE IF NOT EXISTS ", schema,
        ".schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL "
        "DEFAULT now())")));
    absl::StatusOr<int64_t> applied = AppliedMigrations(conn, schema);
    if (!applied.ok()) {
      return absl::InternalError(absl::StrCat("cannot read ", schema, ".schema_migrations"));
    }
    int64_t done = *applied;
    for (auto i = static_cast<size_t>(done); i < steps.size(); ++i) {
      absl::Status s = conn.ExecScript(steps[i]);
      if (!s.ok()) {
        return absl::InternalError(
            absl::StrCat("migration ", schema, " #", i + 1, " failed: ", s.message()));
      }
      REDFLAG_RETURN_IF_ERROR(conn.ExecScript(absl::StrCat(
          "INSERT INTO ", schema, ".schema_migrations(version) VALUES (", i + 1, ")")));
    }
    return absl::OkStatus();
  });
}

std::string JsonArray(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ",";
    out += JsonQuote(items[i]);
  }
  return out + "]";
}

std::string PgTextArray(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ",";
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

std::string JsonQuote(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\0':
        // PostgreSQL's jsonb and text cannot hold NUL: spelled out as the six characters.
        out += "\\\\u0000";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += absl::StrFormat("\\u%04x", static_cast<unsigned char>(c));
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return out;
}

}  // namespace redflag
