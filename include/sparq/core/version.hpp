// The library's version. CMakeLists.txt checks at configure time that project(VERSION) says the
// same, so the installed package version and the one written into files (GGUF general.*, SPRQ
// metadata) cannot drift apart.
#pragma once

#define SPARQ_VERSION_MAJOR 0
#define SPARQ_VERSION_MINOR 1
#define SPARQ_VERSION_PATCH 0

namespace sparq {

/// "major.minor.patch".
inline constexpr const char* version_string = "0.1.0";

static_assert(SPARQ_VERSION_MAJOR == 0 && SPARQ_VERSION_MINOR == 1 && SPARQ_VERSION_PATCH == 0,
              "update version_string with the macros");

}  // namespace sparq
