// Shard manifest: how a model is split across TEE stages and what each stage must prove.
//
// The manifest is a JSON document (docs/manifest.md is the normative description). It names the model
// (identity, file, SHA-256 of the file, architecture), the activation passed between stages, whether the
// orchestrator itself must attest, and for every stage: its contiguous layer range, the SHA-256 of every
// weight tensor it loads, its attestation type and expected measurements, its control and data endpoints,
// and its offload setting (GroupCover: which untrusted worker gets its weight products; `cml stage` builds
// the backend from it, see pipeline/stage_offload.h).
//
// parse_manifest() bounds the document size before parsing and validates everything; errors are
// INVALID_ARGUMENT with a JSON-pointer-like path ("stages[1].layers: ...") so a user can fix the file.
//
// Thread safety: plain values.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attest/attest.h"
#include "base/bytes.h"
#include "base/status.h"

namespace cml::pipeline {

constexpr std::string_view kManifestFormat = "cml-manifest/1";
constexpr size_t kMaxManifestBytes = 16u * 1024 * 1024;
constexpr size_t kMaxStages = 256;
constexpr size_t kMaxTensorsPerStage = 1u << 16;
constexpr size_t kMaxMeasurements = 64;

// A transport address: tcp://HOST:PORT, vsock://CID:PORT, or mem://NAME (in-process pipes: tests and
// benchmarks).
struct Endpoint {
  enum class Kind { kTcp, kVsock, kMemory };
  Kind kind = Kind::kTcp;
  std::string host;  // tcp: IPv4 literal, "localhost", or a name (IPv6 in brackets); mem: the name
  uint32_t cid = 0;  // vsock only
  uint16_t port = 0;
  std::string to_string() const;
  bool operator==(const Endpoint&) const = default;
};
Result<Endpoint> parse_endpoint(std::string_view text);

struct StageAttestation {
  attest::EvidenceType type = attest::EvidenceType::kMock;
  std::map<std::string, Bytes> expected_measurements;  // claim name → exact value
  bool allow_debug = false;
};

// Bounds of Offload::timeout_s (seconds per worker request): [1 ms, 1 day).
constexpr double kMinOffloadTimeoutS = 0.001;
constexpr double kMaxOffloadTimeoutS = 86400;

// A stage's offload of its weight products (docs/manifest.md). The operator key that seals the TEE bundle
// is never part of the manifest: `cml stage --offload-key-file` (or CML_OFFLOAD_KEY_FILE) supplies it.
struct Offload {
  enum class Kind { kNone, kGroupCover };
  enum class OnMismatch { kError, kLocal };
  Kind kind = Kind::kNone;
  std::optional<Endpoint> worker;  // groupcover: tcp://… of the untrusted worker
  // groupcover: folder from `cml groupcover obfuscate` (worker bundle + sealed TEE bundle); empty: session
  // mode (the stage obfuscates its weights itself at load, with fresh randomness, and uploads W'').
  std::string secrets_dir;
  bool freivalds = false;                       // check every worker result
  OnMismatch on_mismatch = OnMismatch::kError;  // failed check: fail the step, or recompute locally
  std::optional<double> timeout_s;              // per worker request; unset: the backend's default (10 s)
  bool operator==(const Offload&) const = default;
};

struct StageSpec {
  uint32_t index = 0;
  uint32_t layer_begin = 0;  // inclusive
  uint32_t layer_end = 0;    // exclusive
  // Every tensor the stage loads → lower-case hex SHA-256 of its raw bytes in the model file.
  std::map<std::string, std::string> weights;
  StageAttestation attestation;
  Endpoint control;
  Endpoint data;  // where the stage accepts its data-in link
  Offload offload;
};

struct ModelInfo {
  std::string name;
  std::string file;          // path as given to `cml shard` (stages may override with --model)
  std::string sha256;        // lower-case hex of the whole file
  std::string architecture;  // "llama", "gpt2", "fake" (tests)
  uint32_t n_layers = 0;
  uint32_t vocab_size = 0;
};

struct ActivationSpec {
  std::string dtype = "f32";  // "f32" (the only one stages produce today), "f16", "bf16"
  uint32_t hidden_size = 0;
  uint32_t max_seq_len = 0;
};

struct OrchestratorSpec {
  bool attest = false;           // stage 0 refuses an unattested orchestrator when true
  StageAttestation attestation;  // what stage 0 expects of the orchestrator when attest is true
};

struct Manifest {
  ModelInfo model;
  ActivationSpec activation;
  OrchestratorSpec orchestrator;
  std::vector<StageSpec> stages;

  // The last stage (produces logits and samples).
  bool is_last(size_t i) const { return i + 1 == stages.size(); }
};

// Parses and validates. INVALID_ARGUMENT (with the failing field's path) or RESOURCE_EXHAUSTED (size).
Result<Manifest> parse_manifest(std::string_view json_text);
Result<Manifest> load_manifest(const std::string& path);
// Validation on a value built in code (parse_manifest calls it).
Status validate_manifest(const Manifest& m);
// Canonical JSON (sorted keys, 2-space indent); parse_manifest(to_json(m)) == m.
std::string manifest_to_json(const Manifest& m);
// SHA-256 (hex) of the canonical JSON: stages and orchestrator agree on the manifest through it.
std::string manifest_digest(const Manifest& m);

// Splits n_layers into n_stages contiguous non-empty ranges. A stage costs `layer_cost` per layer, and
// the last stage `last_stage_extra` more (the output head, which for GPT-2 124M weighs as much as five
// layers). The split minimises the largest stage cost (the pipeline's bottleneck), then the sum of
// squared stage costs (evenness); remaining ties give earlier stages the extra layer. With no extra
// cost, range sizes differ by at most one. INVALID_ARGUMENT if n_stages is 0 or exceeds n_layers, or
// layer_cost is 0.
Result<std::vector<std::pair<uint32_t, uint32_t>>> balance_layers(uint32_t n_layers, uint32_t n_stages,
                                                                  uint64_t layer_cost = 1,
                                                                  uint64_t last_stage_extra = 0);

}  // namespace cml::pipeline
