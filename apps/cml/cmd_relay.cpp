// cml relay: host-side byte forwarder between enclaves (VSock deployments); never decrypts.
#include <CLI/CLI.hpp>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <mutex>

#include "apps/cml/commands.h"
#include "pipeline/relay.h"

namespace cml::app {
namespace {

struct RelayFlags {
  std::vector<std::string> links;  // LISTEN=TARGET
};

int run_relay(const RelayFlags& f) {
  // Runs until SIGINT/SIGTERM (blocked before any thread starts, then awaited).
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::vector<std::unique_ptr<pipeline::Relay>> relays;
  for (const auto& l : f.links) {
    auto eq = l.find('=');
    if (eq == std::string::npos) {
      std::fprintf(stderr, "cml relay: '%s' is not LISTEN=TARGET\n", l.c_str());
      return 2;
    }
    relays.push_back(std::make_unique<pipeline::Relay>(l.substr(0, eq), l.substr(eq + 1)));
    if (Status st = relays.back()->start(); !st.is_ok()) {
      std::fprintf(stderr, "cml relay: %s\n", st.to_string().c_str());
      return 1;
    }
    std::fprintf(stderr, "relay: %s -> %s\n", relays.back()->local_endpoint().c_str(), l.substr(eq + 1).c_str());
  }
  int sig = 0;
  sigwait(&set, &sig);
  for (auto& r : relays) {
    auto s = r->stats();
    r->stop();
    std::fprintf(stderr, "relay %s: %llu connections, %llu bytes forward, %llu back\n", r->local_endpoint().c_str(),
                 static_cast<unsigned long long>(s.connections), static_cast<unsigned long long>(s.bytes_forward),
                 static_cast<unsigned long long>(s.bytes_backward));
  }
  return 0;
}

const CommandRegistrar kRelay("relay", [](CLI::App& root) {
  auto f = std::make_shared<RelayFlags>();
  auto* c = root.add_subcommand("relay", "Forward encrypted stage-to-stage bytes on the host (VSock deployments)");
  c->add_option("links", f->links, "LISTEN=TARGET endpoint pairs, e.g. vsock://3:6001=vsock://17:5001")->required();
  c->callback([f] { set_exit_code(run_relay(*f)); });
});

}  // namespace
}  // namespace cml::app
