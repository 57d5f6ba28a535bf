#include "model/tokenizer.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "model/gguf.h"
#include "model/tokenizer_unicode.h"
#include "support/test_support.h"

namespace cml::model {
namespace {

nlohmann::json read_json(const std::string& path) {
  Bytes b = testing::read_testdata(path);
  return nlohmann::json::parse(b.begin(), b.end());
}

std::unique_ptr<Tokenizer> must(Result<std::unique_ptr<Tokenizer>> r) {
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? std::move(r).value() : nullptr;
}

// ---------------------------------------------------------------------------------------------------
// Llama / llama2.c

TEST(LlamaTokenizer, Reproduces32kExpectedEncodings) {
  CML_TESTDATA_OR_SKIP(tok, "llm/llama2c_tokenizer_32k.bin");
  CML_TESTDATA_OR_SKIP(expected, "llm/llama2c_tokenizer_32k_expected_encodings.json");
  auto t = must(load_llama2c_tokenizer(tok, 32000));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->vocab_size(), 32000);
  EXPECT_EQ(t->bos_id(), 1);
  EXPECT_EQ(t->eos_id(), 2);
  nlohmann::json j = read_json(expected);
  ASSERT_GE(j["cases"].size(), 5u);
  for (const auto& c : j["cases"]) {
    const std::string text = c["text"];
    const std::vector<int32_t> ids = c["ids"];
    EXPECT_EQ(t->encode(text, true), ids) << text;
    // Decoding after BOS strips the dummy-prefix space and gives the text back.
    EXPECT_EQ(t->decode(ids), text);
  }
}

TEST(LlamaTokenizer, ByteFallbackAndRoundTripOfArbitraryBytes) {
  CML_TESTDATA_OR_SKIP(tok, "llm/llama2c_tokenizer_32k.bin");
  auto t = must(load_llama2c_tokenizer(tok));
  ASSERT_TRUE(t);
  // U+1F600 is not a piece of the 32k vocab: four byte tokens <0xF0> <0x9F> <0x98> <0x80> (ids byte+3).
  std::vector<int32_t> ids = t->encode("\xF0\x9F\x98\x80", false);
  ASSERT_GE(ids.size(), 4u);
  EXPECT_EQ(std::vector<int32_t>(ids.end() - 4, ids.end()),
            (std::vector<int32_t>{0xF0 + 3, 0x9F + 3, 0x98 + 3, 0x80 + 3}));
  EXPECT_EQ(t->piece(0xF0 + 3), "<0xF0>");
  EXPECT_EQ(t->decode_token(5, 0xF0 + 3), "\xF0");
  std::mt19937 rng(7);
  for (int i = 0; i < 200; ++i) {
    std::string s(rng() % 40, '\0');
    for (char& c : s) c = static_cast<char>(rng() % 4 == 0 ? rng() % 256 : 'a' + rng() % 26);
    std::vector<int32_t> e = t->encode(s, true);
    EXPECT_EQ(t->decode(e), s);
  }
  EXPECT_EQ(t->decode_token(5, 99999), "\xEF\xBF\xBD");
  EXPECT_EQ(t->decode_token(5, -1), "\xEF\xBF\xBD");
  EXPECT_EQ(t->decode_token(-1, 1), "");  // BOS renders as nothing
}

TEST(LlamaTokenizer, Tok512DecodesTheStories260kGreedyOutput) {
  CML_TESTDATA_OR_SKIP(tok, "llm/stories260K/tok512.llama2c.bin");
  CML_TESTDATA_OR_SKIP(ids_path, "llm/stories260K/greedy_t0_n200_token_ids.json");
  CML_TESTDATA_OR_SKIP(text_path, "llm/stories260K/expected_greedy_t0_n200.txt");
  auto t = must(load_llama2c_tokenizer(tok, 512));
  ASSERT_TRUE(t);
  nlohmann::json j = read_json(ids_path);
  std::vector<int32_t> ids = {1};
  for (int32_t id : j["generated_token_ids_after_bos"]) ids.push_back(id);
  ASSERT_EQ(ids.size(), 201u);
  Bytes expected = testing::read_testdata(text_path);
  // Streaming: each token decoded after its predecessor, as `cml generate` prints.
  std::string streamed;
  for (size_t i = 1; i < ids.size(); ++i) streamed += t->decode_token(ids[i - 1], ids[i]);
  EXPECT_EQ(streamed, std::string(expected.begin(), expected.end()));
  EXPECT_EQ(t->decode(ids), streamed);
}

TEST(LlamaTokenizer, GgufEmbeddedVocabBehavesLikeTok512) {
  CML_TESTDATA_OR_SKIP(gguf, "llm/stories260K/tinyllamas-stories-260k-f32.gguf");
  CML_TESTDATA_OR_SKIP(tok, "llm/stories260K/tok512.llama2c.bin");
  auto file = open_gguf(gguf);
  ASSERT_TRUE(file.is_ok()) << file.status().to_string();
  auto g = must(tokenizer_from_gguf(**file));
  auto b = must(load_llama2c_tokenizer(tok, 512));
  auto o = must(open_tokenizer(gguf));
  ASSERT_TRUE(g && b && o);
  EXPECT_EQ(g->kind(), "llama");
  EXPECT_EQ(g->vocab_size(), 512);
  EXPECT_EQ(g->bos_id(), 1);
  EXPECT_EQ(g->eos_id(), 2);
  for (int32_t id = 3; id < 512; ++id) EXPECT_EQ(g->decode_token(0, id), b->decode_token(0, id)) << id;
  const std::vector<std::string> texts = {"",
                                          "Once upon a time, there was a little girl named Lily.",
                                          "  two  spaces\n\nand newlines\t",
                                          "Lily's mom said, \"Lily, let's go to the park.\"",
                                          "caf\xC3\xA9 \xF0\x9F\x98\x80 \xFF\xFE broken",
                                          "x"};
  for (const std::string& s : texts) {
    EXPECT_EQ(g->encode(s, true), b->encode(s, true)) << s;
    EXPECT_EQ(o->encode(s, false), b->encode(s, false)) << s;
    EXPECT_EQ(g->decode(g->encode(s, true)), s);
  }
  std::mt19937 rng(11);
  for (int i = 0; i < 300; ++i) {
    std::vector<int32_t> ids(1 + rng() % 20);
    for (int32_t& id : ids) id = static_cast<int32_t>(rng() % 512);
    EXPECT_EQ(g->decode(ids), b->decode(ids));
  }
}

TEST(LlamaTokenizer, HostileTokenizerBinIsRejected) {
  auto bin = [](uint32_t max_len, std::vector<std::pair<float, std::string>> toks) {
    ByteWriter w;
    w.u32_le(max_len);
    for (auto& [score, s] : toks) {
      uint32_t u;
      std::memcpy(&u, &score, 4);
      w.u32_le(u), w.u32_le(static_cast<uint32_t>(s.size())), w.bytes(as_bytes(s));
    }
    return w.take();
  };
  Bytes ok = bin(8, {{0, "<unk>"}, {0, "<s>"}, {0, "</s>"}, {-1, "a"}, {-2, " "}, {5, " a"}});
  auto t = parse_llama2c_tokenizer(ok);
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  EXPECT_EQ((*t)->encode("a", true), (std::vector<int32_t>{1, 5}));
  EXPECT_EQ((*t)->encode("b", false), (std::vector<int32_t>{4, 0}));  // no byte tokens: <unk>
  // A truncation is either an error (inside a token) or a shorter vocabulary (at a token boundary).
  size_t failures = 0;
  for (size_t n = 1; n < ok.size(); ++n) {
    auto r = parse_llama2c_tokenizer(ByteSpan(ok.data(), n));
    if (r.is_ok()) {
      EXPECT_GE((*r)->vocab_size(), 3);
      EXPECT_LT((*r)->vocab_size(), 6);
    } else {
      ++failures;
    }
  }
  EXPECT_GE(failures, ok.size() - 4);
  EXPECT_FALSE(parse_llama2c_tokenizer(bin(2, {{0, "<unk>"}, {0, "<s>"}, {0, "</s>"}})).is_ok());
  EXPECT_FALSE(parse_llama2c_tokenizer(bin(1u << 30, {})).is_ok());
  EXPECT_FALSE(parse_llama2c_tokenizer(bin(8, {{0, "<unk>"}, {0, "<s>"}})).is_ok());
  EXPECT_FALSE(parse_llama2c_tokenizer(ok, 7).is_ok());
  EXPECT_TRUE(parse_llama2c_tokenizer(ok, 4).is_ok());  // the model's vocab may be a prefix
  ByteWriter huge;
  huge.u32_le(8), huge.u32_le(0), huge.u32_le(0xFFFFFFFF);
  auto r = parse_llama2c_tokenizer(huge.take());
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("exceeds max_token_length"), std::string::npos) << r.status().to_string();
}

// The heap-based merge loop against a direct transcription of llama2.c's rescanning loop, on random
// vocabularies whose scores tie often (ties go to the leftmost pair).
TEST(LlamaTokenizer, HeapMergeEqualsTheRescanningLoop) {
  std::mt19937 rng(5);
  for (int round = 0; round < 40; ++round) {
    std::vector<std::pair<float, std::string>> vocab = {{0, "<unk>"}, {0, "\n<s>\n"}, {0, "\n</s>\n"}};
    for (int b = 0; b < 256; ++b) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "<0x%02X>", b);
      vocab.push_back({0, buf});
    }
    std::map<std::string, int> index;
    const std::string alphabet = "ab c";
    for (int i = 0; i < 60; ++i) {
      std::string p(1 + rng() % 4, ' ');
      for (char& c : p) c = alphabet[rng() % alphabet.size()];
      if (index.count(p)) continue;
      index[p] = static_cast<int>(vocab.size());
      vocab.push_back({static_cast<float>(rng() % 4), p});
    }
    ByteWriter w;
    w.u32_le(8);
    for (auto& [score, p] : vocab) {
      uint32_t u;
      std::memcpy(&u, &score, 4);
      w.u32_le(u), w.u32_le(static_cast<uint32_t>(p.size())), w.bytes(as_bytes(p));
    }
    auto tok = parse_llama2c_tokenizer(w.data());
    ASSERT_TRUE(tok.is_ok()) << tok.status().to_string();
    for (int t = 0; t < 30; ++t) {
      std::string text(1 + rng() % 24, ' ');
      for (char& c : text) c = (alphabet + "d")[rng() % 5];
      // llama2.c: BOS, dummy prefix, characters (byte fallback), then rescan for the best-scoring pair.
      std::vector<int> ids;
      for (char c : " " + text) {
        auto it = index.find(std::string(1, c));
        ids.push_back(it != index.end() ? it->second : static_cast<uint8_t>(c) + 3);
      }
      while (true) {
        float best = -1e10f;
        int best_at = -1, best_id = -1;
        for (size_t i = 0; i + 1 < ids.size(); ++i) {
          auto it = index.find(vocab[ids[i]].second + vocab[ids[i + 1]].second);
          if (it != index.end() && vocab[it->second].first > best) {
            best = vocab[it->second].first, best_at = static_cast<int>(i), best_id = it->second;
          }
        }
        if (best_at < 0) break;
        ids[best_at] = best_id;
        ids.erase(ids.begin() + best_at + 1);
      }
      ids.insert(ids.begin(), 1);
      EXPECT_EQ((*tok)->encode(text, true), std::vector<int32_t>(ids.begin(), ids.end())) << "'" << text << "'";
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// GPT-2

class Gpt2 : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = testing::testdata_path("llm/gpt2");
    if (!dir) GTEST_SKIP() << "shared test data not found (llm/gpt2)";
    tok_ = must(open_tokenizer(*dir));
    ASSERT_TRUE(tok_);
  }
  std::unique_ptr<Tokenizer> tok_;
};

TEST_F(Gpt2, WellKnownIds) {
  EXPECT_EQ(tok_->kind(), "gpt2");
  EXPECT_EQ(tok_->vocab_size(), 50257);
  EXPECT_EQ(tok_->bos_id(), 50256);
  EXPECT_EQ(tok_->eos_id(), 50256);
  EXPECT_EQ(tok_->encode("Hello world", false), (std::vector<int32_t>{15496, 995}));
  EXPECT_EQ(tok_->encode("hello", false), (std::vector<int32_t>{31373}));
  EXPECT_EQ(tok_->encode("The dog", false), (std::vector<int32_t>{464, 3290}));
  EXPECT_EQ(tok_->encode("The dog", true), (std::vector<int32_t>{50256, 464, 3290}));
  EXPECT_EQ(tok_->decode_token(-1, 50256), "<|endoftext|>");
  EXPECT_EQ(tok_->piece(995), "\xC4\xA0world");  // Ġworld
}

TEST_F(Gpt2, ReproducesTheHuggingFaceGreedyReferenceText) {
  CML_TESTDATA_OR_SKIP(ref, "llm/gpt2_reference.json");
  nlohmann::json j = read_json(ref)["gpt2_124M_greedy"];
  const std::string text = j["expected_text"];
  const std::vector<int32_t> ids = j["expected_output_ids"];
  EXPECT_EQ(tok_->encode(text, false), ids);
  EXPECT_EQ(tok_->decode(ids), text);
  nlohmann::json spots = read_json(ref)["gpt2_bpe_spot_checks_from_encoder_json"];
  for (auto it = spots.begin(); it != spots.end(); ++it) {
    int32_t id = it.value();
    EXPECT_EQ(tok_->piece(id), it.key());
  }
}

// Expected ids computed by an independent implementation (tools/gpt2_bpe_reference.py: the GPT-2 regex run
// by python3-regex and the textbook BPE loop), committed in tests/data.
TEST_F(Gpt2, MatchesTheIndependentReferenceOnUnicodeText) {
  Bytes b = testing::read_testdata(std::string(CML_SOURCE_DIR) + "/tests/data/gpt2_bpe_cases.json");
  nlohmann::json j = nlohmann::json::parse(b.begin(), b.end());
  ASSERT_GE(j["cases"].size(), 20u);
  for (const auto& c : j["cases"]) {
    const std::string text = c["text"];
    const std::vector<int32_t> ids = c["ids"];
    EXPECT_EQ(tok_->encode(text, false), ids) << text;
    EXPECT_EQ(tok_->decode(ids), text);
  }
}

TEST_F(Gpt2, RoundTripsArbitraryBytes) {
  const std::vector<std::string> fixed = {
      "",
      " ",
      "  ",
      "\n\n\n",
      "emoji \xF0\x9F\x98\x80\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9 family",
      "\xFF\xFE\xC0\xAF invalid \xED\xA0\x80 surrogate \xF4\x90\x80\x80 too big \xE2\x82",
      "\x00\x01 nul",
      "caf\xC3\xA9",
      "\xE4\xB8\xAD\xE6\x96\x87 \xD8\xA7\xD9\x84\xD8\xB9\xD8\xB1\xD8\xA8\xD9\x8A\xD8\xA9"};
  for (const std::string& s : fixed) EXPECT_EQ(tok_->decode(tok_->encode(s, false)), s);
  std::mt19937 rng(3);
  for (int i = 0; i < 500; ++i) {
    std::string s(rng() % 64, '\0');
    for (char& c : s) c = static_cast<char>(rng() % 3 == 0 ? rng() % 256 : " \n\t'aZ09.,!\xC3\xA9"[rng() % 14]);
    std::vector<int32_t> ids = tok_->encode(s, false);
    std::string streamed;
    for (size_t k = 0; k < ids.size(); ++k) streamed += tok_->decode_token(k ? ids[k - 1] : -1, ids[k]);
    ASSERT_EQ(streamed, s);
  }
}

TEST(OpenTokenizer, DispatchesOnWhatThePathNames) {
  CML_TESTDATA_OR_SKIP(enc, "llm/gpt2/encoder.json");
  CML_TESTDATA_OR_SKIP(bin, "llm/stories260K/tok512.llama2c.bin");
  auto g = must(open_tokenizer(enc));
  ASSERT_TRUE(g);
  EXPECT_EQ(g->kind(), "gpt2");
  auto l = must(open_tokenizer(bin));
  ASSERT_TRUE(l);
  EXPECT_EQ(l->kind(), "llama");
  EXPECT_EQ(l->vocab_size(), 512);
  EXPECT_EQ(open_tokenizer("/nonexistent/tokenizer.bin").status().code(), StatusCode::kNotFound);
}

TEST(Gpt2Pretokenize, FollowsTheGpt2Rules) {
  using V = std::vector<std::string_view>;
  EXPECT_EQ(gpt2_pretokenize("Hello world"), (V{"Hello", " world"}));
  EXPECT_EQ(gpt2_pretokenize("I'm don't we'll they've you're she'd it's"),
            (V{"I", "'m", " don", "'t", " we", "'ll", " they", "'ve", " you", "'re", " she", "'d", " it", "'s"}));
  EXPECT_EQ(gpt2_pretokenize("A'S"), (V{"A", "'", "S"}));  // contractions are lower-case only
  EXPECT_EQ(gpt2_pretokenize("a  b"), (V{"a", " ", " b"}));
  EXPECT_EQ(gpt2_pretokenize("a \n b"), (V{"a", " \n", " b"}));
  EXPECT_EQ(gpt2_pretokenize("a\nb"), (V{"a", "\n", "b"}));
  EXPECT_EQ(gpt2_pretokenize("end   "), (V{"end", "   "}));
  EXPECT_EQ(gpt2_pretokenize("x 123 4.5"), (V{"x", " 123", " 4", ".", "5"}));
  EXPECT_EQ(gpt2_pretokenize("?!... ok"), (V{"?!...", " ok"}));
  EXPECT_EQ(gpt2_pretokenize("caf\xC3\xA9 na\xC3\xAFve"), (V{"caf\xC3\xA9", " na\xC3\xAFve"}));
  EXPECT_EQ(gpt2_pretokenize("\xC2\xA0x"), (V{"\xC2\xA0", "x"}));          // NBSP is White_Space, not ' '
  EXPECT_EQ(gpt2_pretokenize("a\xFF\xFE b"), (V{"a", "\xFF\xFE", " b"}));  // invalid bytes are "other"
  EXPECT_EQ(unicode::kUnicodeVersion, std::string("14.0.0"));
}

TEST(Gpt2Tokenizer, HostileFilesAreRejected) {
  std::string enc = "{";
  for (int b = 0; b < 256; ++b) {
    char32_t cp = gpt2_byte_to_unicode(static_cast<uint8_t>(b));
    std::string u;
    if (cp < 0x80) {
      u = std::string(1, static_cast<char>(cp));
      if (cp == '"' || cp == '\\') u = "\\" + u;
    } else {
      u = {static_cast<char>(0xC0 | (cp >> 6)), static_cast<char>(0x80 | (cp & 0x3F))};
    }
    enc += "\"" + u + "\": " + std::to_string(b) + ",";
  }
  std::string good = enc + "\"ab\": 256, \"<|endoftext|>\": 257}";
  auto t = parse_gpt2_tokenizer(good, "#version: 0.2\na b\n");
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  EXPECT_EQ((*t)->encode("abab", false), (std::vector<int32_t>{256, 256}));
  EXPECT_EQ((*t)->bos_id(), 257);
  EXPECT_FALSE(parse_gpt2_tokenizer(good, "a c\n").is_ok());                        // merge result missing
  EXPECT_FALSE(parse_gpt2_tokenizer(good, "a  b\n").is_ok());                       // malformed line
  EXPECT_FALSE(parse_gpt2_tokenizer(enc + "\"ab\": 999}", "").is_ok());             // id out of range
  EXPECT_FALSE(parse_gpt2_tokenizer(enc + "\"ab\": 5}", "").is_ok());               // duplicate id
  EXPECT_FALSE(parse_gpt2_tokenizer(enc + "\"a\xE4\xB8\xAD\": 256}", "").is_ok());  // not a byte alphabet char
  EXPECT_FALSE(parse_gpt2_tokenizer("{\"a\": 0}", "").is_ok());                     // bytes missing
  EXPECT_FALSE(parse_gpt2_tokenizer("[1]", "").is_ok());
  EXPECT_FALSE(parse_gpt2_tokenizer("{\"a\": -1}", "").is_ok());
}

}  // namespace
}  // namespace cml::model
