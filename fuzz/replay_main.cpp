// Replay driver for fuzz harnesses in builds without libFuzzer (gcc release/asan builds).
// Usage: fuzz_<name> [corpus-dir-or-file ...] [--iterations=N] [--seed=S]
// Runs LLVMFuzzerTestOneInput on every corpus file, then on N seeded mutations of them (bit flips,
// truncations, insertions, random length fields), so the harness and the parser behind it are exercised
// under the sanitizers on every CI run. Exits non-zero only if the harness crashes (sanitizer abort).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

std::vector<uint8_t> read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void mutate(std::vector<uint8_t>& buf, std::mt19937_64& rng) {
  const int ops = 1 + static_cast<int>(rng() % 4);
  for (int i = 0; i < ops; ++i) {
    switch (rng() % 6) {
      case 0:  // flip a bit
        if (!buf.empty()) buf[rng() % buf.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
        break;
      case 1:  // truncate
        if (!buf.empty()) buf.resize(rng() % buf.size());
        break;
      case 2:  // insert random bytes
        for (size_t n = rng() % 16; n > 0; --n)
          buf.insert(buf.begin() + static_cast<std::ptrdiff_t>(buf.empty() ? 0 : rng() % buf.size()),
                     static_cast<uint8_t>(rng()));
        break;
      case 3:  // overwrite with an interesting value (lengths, boundaries)
        if (buf.size() >= 4) {
          static constexpr uint32_t kVals[] = {0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x10000, 0x7fffffff, 0xffffffff};
          uint32_t v = kVals[rng() % std::size(kVals)];
          size_t at = rng() % (buf.size() - 3);
          for (int b = 0; b < 4; ++b) buf[at + b] = static_cast<uint8_t>(v >> (8 * b));
        }
        break;
      case 4:  // random byte
        if (!buf.empty()) buf[rng() % buf.size()] = static_cast<uint8_t>(rng());
        break;
      default:  // duplicate a slice
        if (buf.size() > 2 && buf.size() < (1u << 20)) {
          size_t a = rng() % buf.size(), n = rng() % (buf.size() - a);
          std::vector<uint8_t> slice(buf.begin() + a, buf.begin() + a + n);
          buf.insert(buf.end(), slice.begin(), slice.end());
        }
        break;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  long iterations = 10000;
  uint64_t seed = 0x5eed;
  std::vector<std::vector<uint8_t>> corpus;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--iterations=", 0) == 0) {
      iterations = std::strtol(a.c_str() + 13, nullptr, 10);
    } else if (a.rfind("--seed=", 0) == 0) {
      seed = std::strtoull(a.c_str() + 7, nullptr, 10);
    } else if (std::filesystem::is_directory(a)) {
      for (const auto& e : std::filesystem::directory_iterator(a))
        if (e.is_regular_file()) corpus.push_back(read_file(e.path()));
    } else if (std::filesystem::is_regular_file(a)) {
      corpus.push_back(read_file(a));
    }
  }
  if (corpus.empty()) corpus.emplace_back();
  for (const auto& c : corpus) LLVMFuzzerTestOneInput(c.data(), c.size());
  std::mt19937_64 rng(seed);
  for (long i = 0; i < iterations; ++i) {
    std::vector<uint8_t> buf = corpus[rng() % corpus.size()];
    mutate(buf, rng);
    LLVMFuzzerTestOneInput(buf.data(), buf.size());
  }
  std::printf("replayed %zu corpus inputs and %ld mutations\n", corpus.size(), iterations);
  return 0;
}
