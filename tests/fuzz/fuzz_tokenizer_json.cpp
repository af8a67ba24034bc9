// libFuzzer target: tokenizer.json reader (io/tokenizer_json.hpp) and the byte-level BPE encoder
// built from what it accepts (model/tokenizer_bpe.hpp). Any input must give either sparq::error or
// a vocabulary the BpeTokenizer constructor accepts or rejects with sparq::error; an accepted one
// must encode a few fixed texts (ASCII, contractions and digits, white-space runs, invalid UTF-8,
// every special token's text inside other text, a prefix of the input itself) without crashing,
// looping or throwing anything but sparq::error (a byte without a single-byte token), and every id
// it returns must decode (ids in range).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sparq/io/tokenizer_json.hpp"
#include "sparq/model/tokenizer_bpe.hpp"

namespace {
void encode_decode(const sparq::model::BpeTokenizer& t, std::string_view text) {
  for (int mode = 0; mode < 2; ++mode) {
    std::vector<int> ids;
    try {
      ids = mode == 0 ? t.encode(text) : t.encode(text, false, false, false);
    } catch (const sparq::error&) {
      continue;  // a byte without a single-byte token, or BOS / EOS asked for but missing
    }
    try {
      (void)t.decode(ids);
    } catch (const sparq::error&) {
      __builtin_trap();  // encode returned an id outside the vocabulary
    }
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sparq;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  model::BpeVocab v;
  try {
    v = io::parse_tokenizer_json(text, "fuzz");
  } catch (const error&) {
    return 0;
  }
  std::vector<std::string> specials;
  for (int id : v.special_ids)
    if (id >= 0 && static_cast<std::size_t>(id) < v.tokens.size()) specials.push_back(v.tokens[static_cast<std::size_t>(id)]);
  try {
    const model::BpeTokenizer t(std::move(v));
    static const char* const fixed[] = {
        "",
        "Hello world",
        " the quick brown fox, don't we'll I'M 12345 67\r\n\n  x\t\ty  ",
        "\xC3\xA9t\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x98\x80 \xE2\x96\x81 \xC2\xA0 \xC5\xBF",  // é, CJK, emoji, ▁, nbsp, ſ
        "\xFF\xFE \xC3 \xE2\x82 \xED\xA0\x80 \xC0\xAF \xF4\x90\x80\x80 \x80",  // invalid UTF-8 of every kind
    };
    for (const char* s : fixed) encode_decode(t, s);
    encode_decode(t, std::string_view("a\0b\x01\x7F", 5));
    std::string all;
    for (const auto& s : specials) {
      encode_decode(t, "x" + s + " y" + s + s);
      all += s;
    }
    encode_decode(t, all + " " + all.substr(0, all.size() / 2));
    encode_decode(t, text.substr(0, 256));
  } catch (const error&) {
  }
  return 0;
}
