#include "tests/support/test_env.h"

#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "absl/strings/str_cat.h"

namespace redflag::testing {

const std::map<std::string, std::string>& TestEnv() {
  static const auto* env = [] {
    auto* m = new std::map<std::string, std::string>;
    const char* path = std::getenv("REDFLAG_TEST_ENV");
    if (path == nullptr) throw std::runtime_error("REDFLAG_TEST_ENV is not set; run through ctest");
    std::ifstream in(path);
    if (!in) throw std::runtime_error(absl::StrCat("cannot read ", path));
    std::string line;
    while (std::getline(in, line)) {
      size_t eq = line.find('=');
      if (eq != std::string::npos) (*m)[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return m;
  }();
  return *env;
}

std::string TestVar(const std::string& name) {
  auto it = TestEnv().find(name);
  if (it == TestEnv().end()) throw std::runtime_error(absl::StrCat(name, " missing from test env"));
  return it->second;
}

void ExportTestEnv() {
  // Once per process: setenv while another thread reads the environment is a data race
  // (TSan caught two concurrent TestPool calls doing exactly that).
  static std::once_flag once;
  std::call_once(once, [] {
    for (const auto& [k, v] : TestEnv()) setenv(k.c_str(), v.c_str(), 1);
  });
}

std::string PkiFile(const std::string& name) { return TestVar("REDFLAG_TEST_PKI") + "/" + name; }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::unique_ptr<PgPool> TestPoolAs(const std::string& user, const std::string& password, int size) {
  ExportTestEnv();
  absl::StatusOr<DbConfig> cfg = DbConfig::FromEnv();
  if (!cfg.ok()) throw std::runtime_error(cfg.status().ToString());
  cfg->pool_size = size;
  if (!user.empty()) {
    cfg->user = user;
    cfg->password = password;
  }
  absl::StatusOr<std::unique_ptr<PgPool>> pool = PgPool::Connect(*cfg);
  if (!pool.ok()) throw std::runtime_error(pool.status().ToString());
  return *std::move(pool);
}

std::unique_ptr<PgPool> TestPool(int size) { return TestPoolAs("", "", size); }

}  // namespace redflag::testing
