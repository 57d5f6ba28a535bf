// cml: one binary, a subcommand for every role (demo, generate, stage, orchestrate, worker, attest, bench…).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "apps/cml/commands.h"
#include "base/log.h"

namespace cml::app {

namespace {
std::vector<std::pair<std::string, CommandSetup>>& commands() {
  static std::vector<std::pair<std::string, CommandSetup>> v;
  return v;
}
std::vector<RegisteredBench>& benches() {
  static std::vector<RegisteredBench> v;
  return v;
}
std::atomic<int> g_exit_code{0};
}  // namespace

CommandRegistrar::CommandRegistrar(std::string name, CommandSetup setup) {
  commands().emplace_back(std::move(name), std::move(setup));
}
BenchRegistrar::BenchRegistrar(std::string suite, std::string help, BenchFn fn, std::vector<std::string> parts) {
  benches().push_back({std::move(suite), std::move(help), std::move(fn), std::move(parts)});
}
const std::vector<std::pair<std::string, CommandSetup>>& registered_commands() {
  return commands();
}
const std::vector<RegisteredBench>& registered_benches() {
  return benches();
}
void set_exit_code(int code) {
  g_exit_code = code;
}
int exit_code() {
  return g_exit_code;
}

namespace {
void add_bench_command(CLI::App& root) {
  auto* bench =
      root.add_subcommand("bench", "End-to-end benchmarks; prints figures beside bounds measured in the same run");
  bench->require_subcommand(1);
  auto opts = std::make_shared<BenchOptions>();
  auto json = std::make_shared<bool>(false);
  auto sorted = benches();
  std::sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return a.suite < b.suite; });
  for (const auto& b : sorted) {
    auto* sub = bench->add_subcommand(b.suite, b.help);
    sub->add_flag("--json", *json, "Print one JSON object");
    sub->add_option("--threads", opts->threads, "Compute threads")->capture_default_str();
    sub->add_flag("--quick", opts->quick, "Small sizes, few repetitions (smoke test)");
    if (!b.parts.empty()) {
      sub->add_option("--only", opts->only, "Run one part (for profiling)")->check(CLI::IsMember(b.parts));
    }
    BenchFn fn = b.fn;
    std::string suite = b.suite;
    sub->callback([fn, opts, json, suite] {
      nlohmann::json out = nlohmann::json::object();
      std::string err = fn(*opts, out);
      if (!err.empty()) {
        std::fprintf(stderr, "cml bench %s: %s\n", suite.c_str(), err.c_str());
        set_exit_code(1);
        return;
      }
      if (*json) {
        std::cout << out.dump() << std::endl;
      } else {
        for (auto it = out.begin(); it != out.end(); ++it) std::cout << it.key() << ": " << it.value().dump() << "\n";
      }
    });
  }
}
}  // namespace

}  // namespace cml::app

int main(int argc, char** argv) {
  CLI::App app{"confidential-ml: confidential model-parallel inference across TEEs"};
  app.require_subcommand(1);
  std::string log_level = "warn";
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off")->capture_default_str();
  app.parse_complete_callback([&] { cml::init_logging(log_level); });
  for (const auto& [name, setup] : cml::app::registered_commands()) setup(app);
  if (!cml::app::registered_benches().empty()) cml::app::add_bench_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return cml::app::exit_code();
}
