// Catch2's main, compiled once (it is the expensive translation unit).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
