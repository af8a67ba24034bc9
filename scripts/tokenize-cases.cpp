// tokenize-cases: encodes test strings with sparq's tokenizer, for scripts/check-tokenizers.mjs.
//
//   tokenize-cases TOKENIZER_JSON CASES_JSONL      one JSON string per input line -> one line of
//                                                  space-separated token ids per case (no BOS/EOS,
//                                                  special-token text parsed)
//   tokenize-cases TOKENIZER_JSON --time TEXT_FILE encodes the first 10 KB, 100 KB and 1 MB of the
//                                                  file and prints the time of each
// Built by the script with the system compiler against include/ (header-only); not part of CMake.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "sparq/core/file.hpp"
#include "sparq/io/tokenizer_json.hpp"

int main(int argc, char** argv) {
  if (argc != 3 && !(argc == 4 && std::string(argv[2]) == "--time")) {
    std::fprintf(stderr, "usage: tokenize-cases TOKENIZER_JSON CASES_JSONL | TOKENIZER_JSON --time TEXT_FILE\n");
    return 2;
  }
  try {
    const sparq::model::BpeTokenizer tok = sparq::io::read_tokenizer_json(argv[1]);
    if (argc == 4) {
      const auto buf = sparq::detail::read_file(argv[3]);
      for (std::size_t n : {std::size_t{10} << 10, std::size_t{100} << 10, std::size_t{1} << 20}) {
        if (n > buf.size()) break;
        const auto t0 = std::chrono::steady_clock::now();
        const auto ids = tok.encode(std::string_view(buf.data(), n), false, false);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::printf("%8zu bytes -> %7zu tokens in %.4f s (%.1f MB/s)\n", n, ids.size(), s, n / s / 1e6);
      }
      return 0;
    }
    std::ifstream in(argv[2]);
    std::string line, out;
    while (std::getline(in, line)) {
      const std::string text = nlohmann::json::parse(line).get<std::string>();
      const auto ids = tok.encode(text, false, false);
      out.clear();
      for (std::size_t i = 0; i < ids.size(); ++i) out += (i ? " " : "") + std::to_string(ids[i]);
      std::cout << out << '\n';
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tokenize-cases: %s\n", e.what());
    return 1;
  }
  return 0;
}
