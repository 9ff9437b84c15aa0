#include "common/config.h"

#include <catch2/catch.hpp>
#include <cstdlib>

using redflag::Env;

TEST_CASE("a missing secret is refused with the variable's name", "[config]") {
  unsetenv("RF_TEST_SECRET");
  auto s = Env::Secret("RF_TEST_SECRET", 32);
  REQUIRE_FALSE(s.ok());
  CHECK(s.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(std::string(s.status().message()) == "RF_TEST_SECRET is not set");
}

TEST_CASE("a short secret is refused without echoing it", "[config]") {
  setenv("RF_TEST_SECRET", "hunter2", 1);
  auto s = Env::Secret("RF_TEST_SECRET", 32);
  REQUIRE_FALSE(s.ok());
  std::string m(s.status().message());
  CHECK_THAT(m, Catch::Contains("at least 32 characters"));
  CHECK_THAT(m, !Catch::Contains("hunter2"));
}

TEST_CASE("a signing key must be exactly 64 hexadecimal characters", "[config]") {
  setenv("RF_TEST_KEY", std::string(63, 'a').c_str(), 1);
  CHECK_THAT(std::string(Env::HexSecret("RF_TEST_KEY", 64).status().message()),
             Catch::Contains("exactly 64 hexadecimal characters"));
  std::string bad(64, 'a');
  bad[10] = 'z';
  setenv("RF_TEST_KEY", bad.c_str(), 1);
  CHECK_THAT(std::string(Env::HexSecret("RF_TEST_KEY", 64).status().message()),
             Catch::Contains("position 10"));
  setenv("RF_TEST_KEY", std::string(64, 'A').c_str(), 1);
  auto ok = Env::HexSecret("RF_TEST_KEY", 64);
  REQUIRE(ok.ok());
  CHECK(ok->size() == 32);
  CHECK(static_cast<unsigned char>((*ok)[0]) == 0xaa);
}

TEST_CASE("integers are range-checked and malformed ones named", "[config]") {
  unsetenv("RF_TEST_INT");
  CHECK(*Env::Int("RF_TEST_INT", 7, 1, 10) == 7);
  setenv("RF_TEST_INT", "11", 1);
  CHECK_THAT(std::string(Env::Int("RF_TEST_INT", 7, 1, 10).status().message()),
             Catch::Contains("between 1 and 10"));
  setenv("RF_TEST_INT", "12abc", 1);
  CHECK(Env::Int("RF_TEST_INT", 7, 1, 10).status().code() == absl::StatusCode::kInvalidArgument);
  setenv("RF_TEST_BOOL", "maybe", 1);
  CHECK_FALSE(Env::Bool("RF_TEST_BOOL", true).ok());
}

TEST_CASE("the database role and password are required", "[config]") {
  // No default role: each service names its own least-privilege role.
  unsetenv("REDFLAG_DB_USER");
  unsetenv("REDFLAG_DB_PASSWORD");
  CHECK(redflag::DbConfig::FromEnv().status().message() == "REDFLAG_DB_USER is not set");
  setenv("REDFLAG_DB_USER", "redflag_auth", 1);
  CHECK(redflag::DbConfig::FromEnv().status().message() == "REDFLAG_DB_PASSWORD is not set");
  unsetenv("REDFLAG_DB_USER");
}
