// `cml generate` end to end: the binary prints llama2.c's stories260K story for greedy decoding.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "tests/support/test_support.h"

namespace {

std::string run(const std::string& cmd, int* status) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  *status = ::pclose(p);
  return out;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(GenerateCli, Stories260KGreedyPrintsTheExpectedStory) {
  CML_TESTDATA_OR_SKIP(text_path, "llm/stories260K/expected_greedy_t0_n200.txt");
  const std::string expected = read_text(text_path) + "\n";  // llama2.c ends with a newline too
  for (const char* model : {"stories260K.llama2c.bin", "tinyllamas-stories-260k-f32.gguf"}) {
    CML_TESTDATA_OR_SKIP(model_path, std::string("llm/stories260K/") + model);
    int status = -1;
    const std::string out = run(std::string(CML_BINARY) + " generate --model '" + model_path +
                                    "' --prompt '' -n 200 --temperature 0 --threads 2 2>/dev/null",
                                &status);
    EXPECT_EQ(status, 0) << model;
    EXPECT_EQ(out, expected) << model;
  }
}

TEST(GenerateCli, SeededSamplingIsReproducibleAndBadFlagsFail) {
  CML_TESTDATA_OR_SKIP(model_path, "llm/stories260K/tinyllamas-stories-260k-f32.gguf");
  const std::string base = std::string(CML_BINARY) + " generate --model '" + model_path +
                           "' --prompt 'Once upon a time' -n 40 --temperature 0.9 --top-k 20 --top-p 0.95 ";
  int s1 = -1, s2 = -1, s3 = -1;
  const std::string a = run(base + "--seed 5 2>/dev/null", &s1);
  const std::string b = run(base + "--seed 5 2>/dev/null", &s2);
  EXPECT_EQ(s1, 0);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.rfind("Once upon a time", 0), 0u) << a;
  run(std::string(CML_BINARY) + " generate --model /nonexistent/model.gguf --prompt x 2>/dev/null", &s3);
  EXPECT_NE(s3, 0);
  int s4 = -1;
  run(base + "--temperature -1 2>/dev/null", &s4);
  EXPECT_NE(s4, 0);
}

}  // namespace
