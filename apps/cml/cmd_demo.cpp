// cml demo: a 3-stage confidential pipeline on one machine. Starts three `cml stage` processes on
// encrypted TCP loopback with mock attestation, verifies and links them, streams a generation, and prints
// the figures. Model: --model, else stories260K from the shared test data, else a random-weight model.
//
// Test data lookup: $CML_TESTDATA_DIR, else a folder shared/testdata beside any ancestor of the cml
// binary (a build inside /work/wt-x finds /work/shared/testdata), else none.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "apps/cml/commands.h"
#include "apps/cml/pipeline_cli.h"
#include "attest/mock.h"
#include "net/stream.h"
#include "pipeline/model_executor.h"

extern char** environ;

namespace cml::app {
namespace {

namespace fs = std::filesystem;

struct DemoFlags {
  std::string model, prompt = "Once upon a time";
  uint32_t stages = 3, n = 48;
  bool keep = false;
};

std::optional<fs::path> find_testdata() {
  if (const char* env = std::getenv("CML_TESTDATA_DIR"); env && *env && fs::is_directory(env)) return fs::path(env);
  std::error_code ec;
  fs::path p = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return std::nullopt;
  for (p = p.parent_path(); !p.empty() && p != p.root_path(); p = p.parent_path()) {
    for (const fs::path& c : {p / "shared" / "testdata", p.parent_path() / "shared" / "testdata"}) {
      if (fs::is_directory(c, ec)) return c;
    }
  }
  return std::nullopt;
}

int run_demo(const DemoFlags& f) {
  std::string source = f.model;
  std::string why;
  if (source.empty()) {
    if (auto td = find_testdata()) {
      fs::path p = *td / "llm" / "stories260K" / "stories260K.llama2c.bin";
      if (fs::exists(p)) {
        source = p.string();
        why = "stories260K from the shared test data";
      }
    }
  }
  if (source.empty()) {
    source = "synthetic:llama-tiny";
    why = "no model given and no shared test data found: a small RANDOM-WEIGHT model (output is noise)";
  }
  if (why.empty()) why = "--model";
  std::printf("cml demo: %u stage processes, encrypted TCP loopback, MOCK attestation (no TEE hardware)\n", f.stages);
  std::printf("model: %s (%s)\n", source.c_str(), why.c_str());

  std::error_code ec;
  fs::path dir = fs::temp_directory_path() / ("cml-demo-" + std::to_string(getpid()));
  fs::create_directories(dir, ec);
  pipeline::ShardOptions so;
  so.stages = f.stages;
  so.max_seq_len = 512;
  so.expect = attest::mock_measurements("cml-demo-stage");
  for (uint32_t i = 0; i < f.stages; ++i) {
    auto c = net::free_loopback_endpoint(), d = net::free_loopback_endpoint();
    if (!c || !d) {
      std::fprintf(stderr, "cml demo: no free port: %s\n", (c ? d.status() : c.status()).to_string().c_str());
      return 1;
    }
    so.endpoints.push_back({*c, *d});
  }
  auto m = pipeline::shard_model(source, so);
  if (!m) {
    std::fprintf(stderr, "cml demo: %s\n", m.status().to_string().c_str());
    return 1;
  }
  const std::string manifest_path = (dir / "manifest.json").string();
  if (Status st = write_file(manifest_path, as_bytes(pipeline::manifest_to_json(*m))); !st.is_ok()) {
    std::fprintf(stderr, "cml demo: %s\n", st.to_string().c_str());
    return 1;
  }
  std::printf("manifest: %s (", manifest_path.c_str());
  for (const auto& s : m->stages)
    std::printf("%sstage %u: layers %u-%u", s.index ? ", " : "", s.index, s.layer_begin, s.layer_end - 1);
  std::printf(")\n\n");

  StageProcesses kids;
  for (uint32_t i = 0; i < f.stages; ++i) {
    std::vector<std::string> args = {"stage",        "--manifest",     manifest_path, "--index", std::to_string(i),
                                     "--mock-image", "cml-demo-stage", "--model",     source};
    const std::string log = (dir / ("stage-" + std::to_string(i) + ".log")).string();
    if (Status st = kids.spawn(args, log); !st.is_ok()) {
      std::fprintf(stderr, "cml demo: stage %u: %s\n", i, st.to_string().c_str());
      return 1;
    }
  }
  RunFlags rf;
  rf.prompt = f.prompt;
  rf.max_new_tokens = f.n;
  rf.connect_timeout_ms = 15000;
  auto r = run_generation(*m, source, rf, stdout, /*shutdown=*/true);
  kids.reap(std::chrono::seconds(5));
  if (!r) {
    std::fprintf(stderr, "cml demo: %s\n", r.status().to_string().c_str());
    for (uint32_t i = 0; i < f.stages; ++i) {
      auto log = read_file((dir / ("stage-" + std::to_string(i) + ".log")).string(), 1 << 16);
      if (log) std::fprintf(stderr, "--- stage %u log ---\n%s", i, std::string(as_string_view(*log)).c_str());
    }
    if (!f.keep) fs::remove_all(dir, ec);
    return 1;
  }
  if (!f.keep) fs::remove_all(dir, ec);
  print_run_table(*m, *r, stdout);
  return 0;
}

const CommandRegistrar kDemo("demo", [](CLI::App& root) {
  auto f = std::make_shared<DemoFlags>();
  auto* c = root.add_subcommand("demo", "3 stage processes on encrypted TCP loopback (mock attestation): generate");
  c->add_option("--model", f->model, "Weight file (default: stories260K from the shared test data)");
  c->add_option("--prompt", f->prompt, "Prompt text")->capture_default_str();
  c->add_option("-n,--max-tokens", f->n, "Tokens to generate")->capture_default_str()->check(CLI::Range(1, 400));
  c->add_option("--stages", f->stages, "Stage processes")->capture_default_str()->check(CLI::Range(1, 16));
  c->add_flag("--keep", f->keep, "Keep the manifest in the temporary folder");
  c->callback([f] { set_exit_code(run_demo(*f)); });
});

}  // namespace
}  // namespace cml::app
