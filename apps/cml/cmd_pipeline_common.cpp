// Helpers shared by the pipeline commands (see pipeline_cli.h).
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <set>
#include <thread>

#include "apps/cml/pipeline_cli.h"
#include "attest/mock.h"
#include "attest/platform.h"
#include "model/weights.h"
#include "net/stream.h"
#include "pipeline/model_executor.h"

extern char** environ;

namespace cml::app {

Status StageProcesses::spawn(const std::vector<std::string>& args, const std::string& log) {
  std::error_code ec;
  const std::string self = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  if (ec) return internal_error("cannot find this binary: " + ec.message());
  std::vector<std::string> all = {self};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (!log.empty()) posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, self.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return internal_error("posix_spawn failed: " + std::to_string(rc));
  pids.push_back(pid);
  return ok_status();
}

void StageProcesses::reap(std::chrono::milliseconds grace) {
  auto until = std::chrono::steady_clock::now() + grace;
  for (int& pid : pids) {
    if (pid <= 0) continue;
    int status = 0;
    while (waitpid(pid, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() >= until) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid = -1;
  }
}

Result<std::unique_ptr<attest::Provider>> stage_provider(const pipeline::StageAttestation& a,
                                                         const std::string& mock_image,
                                                         const attest::PlatformPaths& paths) {
  if (a.type == attest::EvidenceType::kMock) {
    return std::unique_ptr<attest::Provider>(
        std::make_unique<attest::MockProvider>(attest::mock_measurements(mock_image)));
  }
  return attest::open_platform_provider(a.type, paths);
}

std::shared_ptr<const attest::VerifierSet> pipeline_verifiers(const pipeline::Manifest& m) {
  auto set = attest::mock_verifier_set();
  std::set<attest::EvidenceType> types;
  for (const auto& s : m.stages) types.insert(s.attestation.type);
  if (m.orchestrator.attest) types.insert(m.orchestrator.attestation.type);
  for (auto t : types) {
    if (t == attest::EvidenceType::kMock) continue;
    auto v = attest::pinned_verifier(t);
    CML_CHECK_MSG(v.is_ok(), "every real evidence type has a pinned verifier");
    set->add(*v);
  }
  return set;
}

Result<std::unique_ptr<model::Tokenizer>> pipeline_tokenizer(const std::string& source, const std::string& tokenizer,
                                                             int32_t vocab) {
  if (!tokenizer.empty()) return model::open_tokenizer(tokenizer);
  if (pipeline::is_synthetic_source(source)) return std::unique_ptr<model::Tokenizer>();
  CML_ASSIGN_OR_RETURN(auto file, model::open_weight_file(source));
  return model::tokenizer_for_model(*file, source, vocab);
}

Result<RunResult> run_generation(const pipeline::Manifest& m, const std::string& source, const RunFlags& f, FILE* out,
                                 bool shutdown) {
  using namespace std::chrono;
  CML_ASSIGN_OR_RETURN(auto tok, pipeline_tokenizer(source, f.tokenizer, static_cast<int32_t>(m.model.vocab_size)));
  pipeline::GenerateRequest q;
  q.max_new_tokens = f.max_new_tokens;
  q.sampling = {f.temperature, f.top_k, f.top_p, f.seed};
  std::string echo;
  if (tok) {
    const bool add_bos = tok->kind() == "llama" || f.prompt.empty();
    for (int32_t id : tok->encode(f.prompt, add_bos)) q.prompt.push_back(static_cast<uint32_t>(id));
    int32_t prev = -1;
    for (uint32_t id : q.prompt) {
      echo += tok->decode_token(prev, static_cast<int32_t>(id));
      prev = static_cast<int32_t>(id);
    }
    if (tok->eos_id() >= 0) q.stop_token = static_cast<uint32_t>(tok->eos_id());
  } else {
    // A random-weight model has no tokenizer: the prompt's bytes become token ids.
    for (unsigned char c : f.prompt) q.prompt.push_back(c % m.model.vocab_size);
    if (q.prompt.empty()) q.prompt.push_back(0);
    echo = "[prompt: " + std::to_string(q.prompt.size()) + " byte tokens]";
  }
  pipeline::SecureNetworkConfig nc;
  // Outside a TEE the handshakes are one-way (only stages attest). When the manifest requires it, the
  // orchestrator attests too, with the evidence type the manifest names, and the stages check it.
  std::unique_ptr<attest::Provider> provider;
  if (m.orchestrator.attest) {
    auto p = stage_provider(m.orchestrator.attestation, f.mock_image, f.platform);
    if (!p) return p.status().with_context("orchestrator attestation (manifest orchestrator.attest)");
    provider = std::move(*p);
  }
  nc.provider = provider.get();
  nc.verifiers = pipeline_verifiers(m);
  auto net = pipeline::make_secure_network(nc);
  pipeline::OrchestratorOptions oo;
  oo.connect_timeout = milliseconds(f.connect_timeout_ms);
  oo.init_timeout = milliseconds(f.init_timeout_ms);
  oo.op_timeout = milliseconds(f.op_timeout_ms);
  oo.step_timeout = milliseconds(f.step_timeout_ms);
  oo.downstream_overrides = f.downstream_overrides;
  oo.return_cpu = f.return_cpu;
  RunResult r;
  auto t0 = steady_clock::now();
  pipeline::Orchestrator orch(m, *net, oo);
  CML_RETURN_IF_ERROR(orch.connect());
  r.connect_ms = duration<double, std::milli>(steady_clock::now() - t0).count();
  if (!f.quiet) {
    std::fputs(echo.c_str(), out);
    std::fflush(out);
  }
  int32_t prev = q.prompt.empty() ? -1 : static_cast<int32_t>(q.prompt.back());
  std::vector<double> at;
  auto g0 = steady_clock::now();
  auto gens = orch.generate({q}, [&](size_t, uint32_t t) {
    at.push_back(duration<double, std::milli>(steady_clock::now() - g0).count());
    if (f.quiet) return;
    if (tok) {
      if (q.stop_token && t == *q.stop_token) return;
      std::string piece = tok->decode_token(prev, static_cast<int32_t>(t));
      prev = static_cast<int32_t>(t);
      std::fputs(piece.c_str(), out);
    } else {
      std::fprintf(out, " %u", t);
    }
    std::fflush(out);
  });
  if (!f.quiet) std::fputc('\n', out);
  CML_RETURN_IF_ERROR(gens[0].status);
  r.tokens = gens[0].tokens;
  r.first_token_ms = at.empty() ? 0 : at[0];
  r.total_ms = at.empty() ? 0 : at.back();
  r.ms_per_token = at.size() > 1 ? (at.back() - at[0]) / double(at.size() - 1) : 0;
  orch.health_check().ignore_error();  // refreshes the per-stage figures
  r.report = orch.report();
  if (shutdown) orch.shutdown().ignore_error();
  return r;
}

void print_run_table(const pipeline::Manifest& m, const RunResult& r, FILE* out) {
  const auto& rep = r.report;
  std::fprintf(
      out, "\n%-34s %s\n", "model",
      (m.model.name + " (" + m.model.architecture + ", " + std::to_string(m.model.n_layers) + " layers)").c_str());
  std::fprintf(out, "%-34s %.1f ms\n", "connect + attest + init + link", r.connect_ms);
  std::fprintf(out, "%-34s %.1f ms\n", "time to first token", r.first_token_ms);
  std::fprintf(out, "%-34s %.2f ms (%zu tokens)\n", "decode ms/token", r.ms_per_token, r.tokens.size());
  std::fprintf(out, "\n%-6s %-9s %-10s %-12s %-18s %-14s %s\n", "stage", "layers", "steps", "compute ms", "cipher",
               "attestation", "measurements verified");
  for (size_t i = 0; i < rep.stages.size(); ++i) {
    const auto& s = rep.stages[i];
    std::string meas;
    for (const auto& n : s.control.verified_measurements) meas += (meas.empty() ? "" : ",") + n;
    std::string layers = std::to_string(m.stages[i].layer_begin) + "-" + std::to_string(m.stages[i].layer_end - 1);
    std::fprintf(out, "%-6zu %-9s %-10llu %-12.1f %-18s %-14s %s\n", i, layers.c_str(),
                 static_cast<unsigned long long>(s.steps), double(s.compute_us) / 1000.0, s.control.cipher.c_str(),
                 s.control.attestation.c_str(), meas.empty() ? "(none pinned)" : meas.c_str());
  }
  std::fprintf(out, "\n%-26s %12s %10s\n", "link", "bytes", "messages");
  std::fprintf(out, "%-26s %12llu %10llu\n", "orchestrator -> stage 0",
               static_cast<unsigned long long>(rep.to_first.bytes_sent),
               static_cast<unsigned long long>(rep.to_first.frames_sent));
  for (size_t i = 0; i + 1 < rep.stages.size(); ++i) {
    std::string name = "stage " + std::to_string(i) + " -> stage " + std::to_string(i + 1);
    std::fprintf(out, "%-26s %12llu %10llu\n", name.c_str(), static_cast<unsigned long long>(rep.stages[i].out_bytes),
                 static_cast<unsigned long long>(rep.stages[i].out_frames));
  }
  std::string last = "stage " + std::to_string(rep.stages.size() - 1) + " -> orchestrator";
  std::fprintf(out, "%-26s %12llu %10llu\n", last.c_str(),
               static_cast<unsigned long long>(rep.from_last.bytes_received),
               static_cast<unsigned long long>(rep.from_last.frames_received));
  std::fprintf(out, "(bytes are plaintext payload; each message is one AEAD-sealed record or a tensor's records)\n");
}

}  // namespace cml::app
