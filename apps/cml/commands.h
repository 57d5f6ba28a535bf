// Command registry for the `cml` binary. Each cmd_*.cpp registers its subcommands with a static
// CommandRegistrar, and each end-to-end benchmark suite (`cml bench <suite> --json`) with a
// BenchRegistrar, so adding a role touches only its own file.
#pragma once

#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace cml::app {

// Adds one subcommand (with its flags and callback) to the root app.
using CommandSetup = std::function<void(CLI::App& root)>;

struct CommandRegistrar {
  CommandRegistrar(std::string name, CommandSetup setup);
};

// Options every bench suite receives.
struct BenchOptions {
  int threads = 2;
  bool quick = false;  // smaller sizes and fewer repetitions (used by tests)
  std::string only;    // run one part of the suite (for profiling); each suite names its parts
};
// A bench suite fills `out` with its figures; a non-empty return is an error message.
using BenchFn = std::function<std::string(const BenchOptions&, nlohmann::json& out)>;

struct BenchRegistrar {
  // `parts`: the names `--only` accepts (none: the suite always runs whole).
  BenchRegistrar(std::string suite, std::string help, BenchFn fn, std::vector<std::string> parts = {});
};

struct RegisteredBench {
  std::string suite, help;
  BenchFn fn;
  std::vector<std::string> parts;
};
const std::vector<std::pair<std::string, CommandSetup>>& registered_commands();
const std::vector<RegisteredBench>& registered_benches();

// Exit code a command callback asks for (CLI11 callbacks return void).
void set_exit_code(int code);
int exit_code();

}  // namespace cml::app
