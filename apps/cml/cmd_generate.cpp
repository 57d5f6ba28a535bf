// cml generate: single-process text generation (the plain, non-confidential baseline).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>

#include "apps/cml/blas_env.h"
#include "apps/cml/commands.h"
#include "apps/cml/offload_flags.h"
#include "model/executor.h"
#include "model/generate.h"
#include "model/tokenizer.h"

namespace cml::app {
namespace {

struct GenerateFlags {
  std::string model, prompt, tokenizer;
  int64_t n = 256;
  float temperature = 1.0f;
  int top_k = 0;
  float top_p = 0.9f;
  uint64_t seed = 0;
  bool seed_given = false;
  int threads = 2;
  OffloadFlags offload;  // --offload groupcover --worker ADDR [--secrets DIR --key-file K] [--freivalds]
};

// The tokenizer for a model: --tokenizer, else the one that goes with the model file.
Result<std::unique_ptr<model::Tokenizer>> find_tokenizer(const GenerateFlags& f, const model::Executor& ex) {
  if (!f.tokenizer.empty()) return model::open_tokenizer(f.tokenizer);
  return model::tokenizer_for_model(ex.file(), f.model, static_cast<int32_t>(ex.config().vocab));
}

int run_generate(const GenerateFlags& f) {
  model::ExecutorOptions eo;
  eo.threads = f.threads;
  eo.max_sequences = 1;
  auto offload = make_backend_for_flags(f.offload);  // declared first: outlives the executor
  if (!offload.is_ok()) {
    std::fprintf(stderr, "cml generate: %s\n", offload.status().to_string().c_str());
    return 1;
  }
  eo.backend = offload->get();
  auto ex_or = model::Executor::open(f.model, {}, eo);
  if (!ex_or.is_ok()) {
    std::fprintf(stderr, "cml generate: %s\n", ex_or.status().to_string().c_str());
    return 1;
  }
  auto& ex = **ex_or;
  auto tok_or = find_tokenizer(f, ex);
  if (!tok_or.is_ok()) {
    std::fprintf(stderr, "cml generate: tokenizer: %s\n", tok_or.status().to_string().c_str());
    return 1;
  }
  const model::Tokenizer& tok = **tok_or;
  // Llama prompts start with BOS (as llama2.c); GPT-2 needs <|endoftext|> only to start from nothing.
  const bool add_bos = tok.kind() == "llama" || f.prompt.empty();
  std::vector<int32_t> prompt = tok.encode(f.prompt, add_bos);
  if (prompt.empty()) {
    std::fprintf(stderr, "cml generate: the prompt encodes to no tokens and the vocabulary has no BOS\n");
    return 1;
  }
  model::GenerateOptions go;
  go.max_new_tokens = f.n;
  go.sampler.temperature = f.temperature;
  go.sampler.top_k = f.top_k;
  go.sampler.top_p = f.top_p;
  go.sampler.seed = f.seed_given ? f.seed : std::random_device{}();
  for (int32_t id : {tok.bos_id(), tok.eos_id()}) {
    if (id >= 0) go.stop_ids.push_back(id);
  }
  // Echo the prompt as the model sees it, then stream each token as it is sampled.
  int32_t prev = -1;
  std::string text;
  for (int32_t id : prompt) {
    text += tok.decode_token(prev, id);
    prev = id;
  }
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
  const auto t0 = std::chrono::steady_clock::now();
  auto out = model::generate(ex, prompt, go, [&](int32_t id) {
    const std::string piece = tok.decode_token(prev, id);
    prev = id;
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    return true;
  });
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fputc('\n', stdout);
  std::fflush(stdout);
  if (!out.is_ok()) {
    std::fprintf(stderr, "cml generate: %s\n", out.status().to_string().c_str());
    return 1;
  }
  std::fprintf(stderr, "%zu prompt tokens, %zu generated in %.3f s (%.1f tok/s, %d threads)\n", prompt.size(),
               out->size(), s, static_cast<double>(out->size()) / s, f.threads);
  return 0;
}

const CommandRegistrar kGenerate("generate", [](CLI::App& root) {
  auto f = std::make_shared<GenerateFlags>();
  auto* c = root.add_subcommand("generate", "Generate text with a model in this process (no TEEs, no pipeline)");
  c->add_option("--model", f->model, "Weight file: GGUF, safetensors (GPT-2) or llama2.c checkpoint")->required();
  c->add_option("--prompt", f->prompt, "Prompt text (empty: start from BOS)");
  c->add_option("-n,--max-tokens", f->n, "Tokens to generate")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  c->add_option("--temperature", f->temperature, "0 = greedy")->capture_default_str()->check(CLI::Range(0.0, 100.0));
  c->add_option("--top-k", f->top_k, "Sample among the k most likely tokens (0 = all)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 24));
  c->add_option("--top-p", f->top_p, "Nucleus sampling mass (1 = off)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  auto* seed = c->add_option("--seed", f->seed, "Random seed (default: from the system)");
  c->add_option("--threads", f->threads, "Compute threads")->capture_default_str()->check(CLI::Range(1, 256));
  c->add_option("--tokenizer", f->tokenizer,
                "Tokenizer file or directory (default: embedded in GGUF, or found beside the model)");
  add_offload_flags(*c, f->offload);
  c->callback([f, seed] {
    reexec_with_blas_core_if_needed();
    f->seed_given = seed->count() > 0;
    if (f->top_p <= 0.0f) f->top_p = 1.0f;
    set_exit_code(run_generate(*f));
  });
});

}  // namespace
}  // namespace cml::app
