// Replay driver for fuzz harnesses in builds without libFuzzer (the gcc builds).
// Usage: fuzz_<name> CORPUS_DIR_OR_FILE... [--iterations=N] [--seed=S]
//
// Runs LLVMFuzzerTestOneInput on every corpus file (in sorted path order), then on N seeded mutations
// of them (bit flips, truncations, insertions, boundary values in length fields, duplicated slices), so
// the harness and the parser behind it run on every CI build. Like libFuzzer, it calls
// LLVMFuzzerInitialize when the harness defines it, and hands each input over in a heap block of exactly
// its size, so a sanitizer sees a one-byte over-read.
//
// Exit status: 0 when every input ran; 2 on a usage error (unknown flag, missing path, empty corpus:
// a smoke test that checks nothing must not pass). A crash aborts the process; the input that caused it
// is written to ./replay-crash-input first (signal handler, or the sanitizer's death callback), and the
// message names the seed and iteration that reproduce it.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) __attribute__((weak));
extern "C" void __sanitizer_set_death_callback(void (*callback)()) __attribute__((weak));

namespace {

// The input being run, for the crash handlers (written before each call, read only when dying).
const uint8_t* volatile g_current = nullptr;
volatile size_t g_current_size = 0;
volatile long g_iteration = -1;  // -1: a corpus file
uint64_t g_seed = 0;

void write_all(int fd, const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t w = ::write(fd, c, n);
    if (w <= 0) return;
    c += w;
    n -= static_cast<size_t>(w);
  }
}

void write_number(int fd, uint64_t v) {
  char digits[24];
  size_t n = 0;
  do {
    digits[sizeof digits - 1 - n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v > 0);
  write_all(fd, digits + sizeof digits - n, n);
}

// Async-signal-safe: open/write/close only.
void save_current_input() {
  static volatile sig_atomic_t saved = 0;
  if (saved || !g_current) return;
  saved = 1;
  int fd = ::open("replay-crash-input", O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    write_all(fd, const_cast<const uint8_t*>(g_current), g_current_size);
    ::close(fd);
  }
  static const char kMsg[] = "\nreplay: crashing input written to ./replay-crash-input; ";
  write_all(2, kMsg, sizeof kMsg - 1);
  if (g_iteration < 0) {
    static const char kCorpus[] = "it is a corpus file\n";
    write_all(2, kCorpus, sizeof kCorpus - 1);
    return;
  }
  static const char kSeed[] = "reproduce with --seed=";
  write_all(2, kSeed, sizeof kSeed - 1);
  write_number(2, g_seed);
  static const char kIter[] = " --iterations=";
  write_all(2, kIter, sizeof kIter - 1);
  write_number(2, static_cast<uint64_t>(g_iteration) + 1);
  write_all(2, "\n", 1);
}

void on_fatal_signal(int sig) {
  save_current_input();
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

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
      case 2:  // insert random bytes anywhere, end included
        for (size_t n = 1 + rng() % 16; n > 0; --n)
          buf.insert(buf.begin() + static_cast<std::ptrdiff_t>(rng() % (buf.size() + 1)), static_cast<uint8_t>(rng()));
        break;
      case 3:  // overwrite with an interesting value (lengths, boundaries), either byte order
        if (buf.size() >= 4) {
          static constexpr uint32_t kVals[] = {0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x10000, 0x7fffffff, 0xffffffff};
          const uint32_t v = kVals[rng() % std::size(kVals)];
          const size_t at = rng() % (buf.size() - 3);
          const bool big_endian = rng() % 2;
          for (int b = 0; b < 4; ++b) buf[at + b] = static_cast<uint8_t>(v >> (8 * (big_endian ? 3 - b : b)));
        }
        break;
      case 4:  // random byte
        if (!buf.empty()) buf[rng() % buf.size()] = static_cast<uint8_t>(rng());
        break;
      default:  // append a copy of a slice (bounded: inputs stay below 1 MiB + the corpus size)
        if (buf.size() > 2 && buf.size() < (1u << 20)) {
          const size_t a = rng() % buf.size(), n = rng() % (buf.size() - a);
          std::vector<uint8_t> slice(buf.begin() + static_cast<std::ptrdiff_t>(a),
                                     buf.begin() + static_cast<std::ptrdiff_t>(a + n));
          buf.insert(buf.end(), slice.begin(), slice.end());
        }
        break;
    }
  }
}

// Runs one input from an exact-size heap copy (never the vector's own, larger, capacity).
void run_one(const std::vector<uint8_t>& input) {
  std::unique_ptr<uint8_t[]> exact(new uint8_t[input.size()]);
  if (!input.empty()) std::memcpy(exact.get(), input.data(), input.size());
  g_current = exact.get();
  g_current_size = input.size();
  LLVMFuzzerTestOneInput(exact.get(), input.size());
  g_current = nullptr;
}

int usage(const char* argv0, const std::string& why) {
  std::fprintf(stderr, "%s: %s\nusage: %s CORPUS_DIR_OR_FILE... [--iterations=N] [--seed=S]\n", argv0, why.c_str(),
               argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  long iterations = 10000;
  uint64_t seed = 0x5eed;
  std::vector<std::filesystem::path> files;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    char* end = nullptr;
    if (a.rfind("--iterations=", 0) == 0) {
      iterations = std::strtol(a.c_str() + 13, &end, 10);
      if (*end != '\0' || iterations < 0) return usage(argv[0], "bad " + a);
    } else if (a.rfind("--seed=", 0) == 0) {
      seed = std::strtoull(a.c_str() + 7, &end, 10);
      if (*end != '\0') return usage(argv[0], "bad " + a);
    } else if (!a.empty() && a[0] == '-') {
      return usage(argv[0], "unknown flag " + a + " (this is the replay driver, not libFuzzer)");
    } else if (std::filesystem::is_directory(a)) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(a))
        if (e.is_regular_file()) files.push_back(e.path());
    } else if (std::filesystem::is_regular_file(a)) {
      files.emplace_back(a);
    } else {
      return usage(argv[0], "no such corpus file or folder: " + a);
    }
  }
  std::sort(files.begin(), files.end());  // the same seed replays the same inputs on every machine
  std::vector<std::vector<uint8_t>> corpus;
  for (const auto& f : files) corpus.push_back(read_file(f));
  if (corpus.empty()) return usage(argv[0], "the corpus is empty; give at least one seed input");

  g_seed = seed;
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) std::signal(sig, on_fatal_signal);
  if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(save_current_input);

  for (const auto& c : corpus) run_one(c);
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> buf;
  for (long i = 0; i < iterations; ++i) {
    g_iteration = i;
    buf = corpus[rng() % corpus.size()];
    mutate(buf, rng);
    run_one(buf);
  }
  std::printf("replayed %zu corpus inputs and %ld mutations (seed %llu)\n", corpus.size(), iterations,
              static_cast<unsigned long long>(seed));
  return 0;
}
