#include "pipeline/manifest.h"

#include <cctype>
#include <charconv>

#include "crypto/hash.h"
#include "pipeline/json_util.h"
#include "pipeline/link.h"

namespace cml::pipeline {

using nlohmann::json;
using namespace json_util;

namespace {

bool is_hex_sha256(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Result<uint64_t> parse_decimal(std::string_view s, uint64_t max, std::string_view what) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size() || v > max) {
    return invalid_argument(std::string(what) + ": '" + std::string(s) + "' is not a number ≤ " + std::to_string(max));
  }
  return v;
}

Result<StageAttestation> parse_attestation(const json& j, const std::string& path) {
  CML_RETURN_IF_ERROR(only_keys(j, path, {"type", "expected_measurements", "allow_debug"}));
  StageAttestation a;
  CML_ASSIGN_OR_RETURN(std::string type, get_string(j, path, "type", 32));
  auto t = attest::parse_evidence_type(type);
  if (!t) return invalid_argument(path + ".type: unknown attestation type '" + type + "' (mock, nitro, sev-snp, tdx)");
  a.type = *t;
  if (j.contains("expected_measurements")) {
    CML_ASSIGN_OR_RETURN(const json* m, field(j, path, "expected_measurements", json::value_t::object));
    if (m->size() > kMaxMeasurements) return invalid_argument(path + ".expected_measurements: too many entries");
    for (const auto& [name, value] : m->items()) {
      std::string p = path + ".expected_measurements." + name;
      if (name.empty() || name.size() > 64) return invalid_argument(p + ": bad measurement name");
      if (!value.is_string()) return invalid_argument(p + ": expected a hex string");
      auto bytes = from_hex(value.get_ref<const std::string&>());
      if (!bytes || bytes->empty() || bytes->size() > 128) {
        return invalid_argument(p + ": expected 1 to 128 bytes of hex");
      }
      a.expected_measurements[name] = std::move(*bytes);
    }
  }
  if (j.contains("allow_debug")) {
    CML_ASSIGN_OR_RETURN(a.allow_debug, get_bool(j, path, "allow_debug"));
  }
  return a;
}

json attestation_to_json(const StageAttestation& a) {
  json m = json::object();
  for (const auto& [k, v] : a.expected_measurements) m[k] = to_hex(v);
  return {{"type", std::string(attest::evidence_type_name(a.type))},
          {"expected_measurements", m},
          {"allow_debug", a.allow_debug}};
}

bool has_control_char(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
  }
  return false;
}

Result<Offload> parse_offload(const json& j, const std::string& path) {
  for (const char* k : {"key", "key_file", "operator_key"}) {
    if (j.contains(k)) {
      return invalid_argument(path + "." + k +
                              ": the operator key is not part of the manifest; give it to the stage with "
                              "`cml stage --offload-key-file FILE` (or CML_OFFLOAD_KEY_FILE)");
    }
  }
  CML_RETURN_IF_ERROR(only_keys(j, path, {"kind", "worker", "secrets", "freivalds", "on_mismatch", "timeout_s"}));
  Offload o;
  CML_ASSIGN_OR_RETURN(std::string kind, get_string(j, path, "kind", 32));
  if (kind == "none") {
    for (const char* k : {"worker", "secrets", "freivalds", "on_mismatch", "timeout_s"}) {
      if (j.contains(k)) return invalid_argument(path + "." + k + ": kind \"none\" takes no " + k);
    }
    return o;
  }
  if (kind != "groupcover") return invalid_argument(path + ".kind: '" + kind + "' is not none or groupcover");
  o.kind = Offload::Kind::kGroupCover;
  CML_ASSIGN_OR_RETURN(std::string worker, get_string(j, path, "worker", 512));
  auto ep = parse_endpoint(worker);
  if (!ep) return ep.status().with_context(path + ".worker");
  if (ep->kind != Endpoint::Kind::kTcp) return invalid_argument(path + ".worker: the worker is reached over tcp://");
  o.worker = *ep;
  if (j.contains("secrets")) {
    CML_ASSIGN_OR_RETURN(o.secrets_dir, get_string(j, path, "secrets", 4096));
  }
  if (j.contains("freivalds")) {
    CML_ASSIGN_OR_RETURN(o.freivalds, get_bool(j, path, "freivalds"));
  }
  if (j.contains("on_mismatch")) {
    CML_ASSIGN_OR_RETURN(std::string mm, get_string(j, path, "on_mismatch", 16));
    if (mm == "local") {
      o.on_mismatch = Offload::OnMismatch::kLocal;
    } else if (mm != "error") {
      return invalid_argument(path + ".on_mismatch: '" + mm + "' is not error or local");
    }
  }
  if (j.contains("timeout_s")) {
    const json& t = j.at("timeout_s");
    if (!t.is_number()) return invalid_argument(path + ".timeout_s: expected a number of seconds");
    o.timeout_s = t.get<double>();
  }
  return o;
}

json offload_to_json(const Offload& o) {
  if (o.kind == Offload::Kind::kNone) return {{"kind", "none"}};
  json j = {{"kind", "groupcover"},
            {"worker", o.worker ? o.worker->to_string() : ""},
            {"secrets", o.secrets_dir},
            {"freivalds", o.freivalds},
            {"on_mismatch", o.on_mismatch == Offload::OnMismatch::kLocal ? "local" : "error"}};
  if (o.timeout_s) j["timeout_s"] = *o.timeout_s;
  return j;
}

// The rules parse_offload cannot see in one field (also applied to manifests built in code).
Status validate_offload(const Offload& o, const std::string& path) {
  if (o.kind == Offload::Kind::kNone) {
    if (o.worker || !o.secrets_dir.empty() || o.freivalds || o.on_mismatch != Offload::OnMismatch::kError ||
        o.timeout_s)
      return invalid_argument(path + ": kind \"none\" takes no other setting");
    return ok_status();
  }
  if (!o.worker) return invalid_argument(path + ".worker: missing (groupcover needs the worker's tcp:// address)");
  if (o.worker->kind != Endpoint::Kind::kTcp)
    return invalid_argument(path + ".worker: the worker is reached over tcp://");
  if (o.secrets_dir.size() > 4096) return invalid_argument(path + ".secrets: longer than 4096 bytes");
  if (has_control_char(o.secrets_dir)) return invalid_argument(path + ".secrets: control character in the path");
  if (o.on_mismatch == Offload::OnMismatch::kLocal && !o.freivalds) {
    return invalid_argument(path +
                            ".on_mismatch: \"local\" needs freivalds: true (without checks no result is "
                            "ever found to mismatch)");
  }
  if (o.timeout_s && !(*o.timeout_s >= kMinOffloadTimeoutS && *o.timeout_s < kMaxOffloadTimeoutS)) {
    return invalid_argument(path + ".timeout_s: must be at least 0.001 and less than 86400 seconds");
  }
  return ok_status();
}

}  // namespace

std::string Endpoint::to_string() const {
  if (kind == Kind::kVsock) return "vsock://" + std::to_string(cid) + ":" + std::to_string(port);
  if (kind == Kind::kMemory) return "mem://" + host;
  return "tcp://" + host + ":" + std::to_string(port);
}

Result<Endpoint> parse_endpoint(std::string_view text) {
  Endpoint e;
  std::string_view rest;
  if (text.starts_with("mem://")) {
    e.kind = Endpoint::Kind::kMemory;
    std::string_view name = text.substr(6);
    if (name.empty() || name.size() > 128) return invalid_argument("endpoint '" + std::string(text) + "': bad name");
    for (char c : name) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
        return invalid_argument("endpoint '" + std::string(text) + "': bad character in name");
      }
    }
    e.host = std::string(name);
    return e;
  }
  if (text.starts_with("tcp://")) {
    rest = text.substr(6);
  } else if (text.starts_with("vsock://")) {
    e.kind = Endpoint::Kind::kVsock;
    rest = text.substr(8);
  } else {
    return invalid_argument("endpoint '" + std::string(text) + "' must start with tcp://, vsock:// or mem://");
  }
  size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return invalid_argument("endpoint '" + std::string(text) + "' must be of the form HOST:PORT");
  }
  std::string_view host = rest.substr(0, colon);
  CML_ASSIGN_OR_RETURN(uint64_t port, parse_decimal(rest.substr(colon + 1), 65535, "endpoint port"));
  e.port = static_cast<uint16_t>(port);
  if (e.kind == Endpoint::Kind::kVsock) {
    CML_ASSIGN_OR_RETURN(uint64_t cid, parse_decimal(host, UINT32_MAX, "vsock cid"));
    e.cid = static_cast<uint32_t>(cid);
    return e;
  }
  if (host.size() > 253) return invalid_argument("endpoint host name too long");
  for (char c : host) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
              c == ':' || c == '[' || c == ']';
    if (!ok) return invalid_argument("endpoint '" + std::string(text) + "': bad character in host");
  }
  e.host = std::string(host);
  return e;
}

Result<std::vector<std::pair<uint32_t, uint32_t>>> balance_layers(uint32_t n_layers, uint32_t n_stages,
                                                                  uint64_t layer_cost, uint64_t last_stage_extra) {
  if (n_stages == 0) return invalid_argument("at least one stage is needed");
  if (n_stages > n_layers) {
    return invalid_argument(std::to_string(n_stages) + " stages for a model of " + std::to_string(n_layers) +
                            " layers: every stage needs at least one layer");
  }
  if (layer_cost == 0) return invalid_argument("a layer's cost must be positive");
  using Wide = unsigned __int128;  // squared costs of billions of weights overflow 64 bits
  const auto cost = [&](uint32_t begin, uint32_t end) {
    return Wide(end - begin) * layer_cost + (end == n_layers ? last_stage_extra : 0);
  };
  // The bottleneck: the smallest largest-stage cost any split reaches. Filling each stage as far as the
  // bound allows (leaving a layer for each later stage) is optimal for contiguous ranges, so a bound is
  // feasible exactly when that fill leaves the last stage within it; binary search over the bound.
  const auto feasible = [&](Wide bound) {
    uint32_t at = 0;
    for (uint32_t i = 0; i + 1 < n_stages; ++i) {
      uint32_t end = at + 1;
      while (end + (n_stages - i - 1) < n_layers && cost(at, end + 1) <= bound) ++end;
      if (cost(at, end) > bound) return false;
      at = end;
    }
    return cost(at, n_layers) <= bound;
  };
  Wide lo = 1, hi = cost(0, n_layers);
  while (lo < hi) {
    const Wide mid = lo + (hi - lo) / 2;
    if (feasible(mid)) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  const Wide bound = lo;
  // Among splits within the bound, the most even one: best[k][j] is the least sum of squared costs of
  // k stages covering layers [0, j); a tie keeps the later cut (the earlier stages take more).
  constexpr Wide kNone = ~Wide(0);
  std::vector<std::vector<Wide>> best(n_stages + 1, std::vector<Wide>(n_layers + 1, kNone));
  std::vector<std::vector<uint32_t>> cut(n_stages + 1, std::vector<uint32_t>(n_layers + 1, 0));
  best[0][0] = 0;
  for (uint32_t k = 1; k <= n_stages; ++k) {
    for (uint32_t j = k; j <= n_layers; ++j) {
      for (uint32_t i = k - 1; i < j; ++i) {
        const Wide c = cost(i, j);
        if (best[k - 1][i] == kNone || c > bound) continue;
        const Wide total = best[k - 1][i] + c * c;
        if (best[k][j] == kNone || total <= best[k][j]) {
          best[k][j] = total;
          cut[k][j] = i;
        }
      }
    }
  }
  std::vector<std::pair<uint32_t, uint32_t>> out(n_stages);
  for (uint32_t k = n_stages, end = n_layers; k > 0; --k) {
    out[k - 1] = {cut[k][end], end};
    end = cut[k][end];
  }
  return out;
}

Status validate_manifest(const Manifest& m) {
  if (m.model.name.empty()) return invalid_argument("model.name: empty");
  if (!is_hex_sha256(m.model.sha256)) return invalid_argument("model.sha256: expected 64 lower-case hex digits");
  if (m.model.architecture.empty()) return invalid_argument("model.architecture: empty");
  if (m.model.n_layers == 0) return invalid_argument("model.n_layers: must be at least 1");
  if (m.activation.dtype != "f32" && m.activation.dtype != "f16" && m.activation.dtype != "bf16") {
    return invalid_argument("activation.dtype: '" + m.activation.dtype + "' is not f32, f16 or bf16");
  }
  if (m.activation.hidden_size == 0) return invalid_argument("activation.hidden_size: must be at least 1");
  if (m.activation.max_seq_len == 0) return invalid_argument("activation.max_seq_len: must be at least 1");
  if (m.stages.empty()) return invalid_argument("stages: at least one stage is needed");
  if (m.stages.size() > kMaxStages) return invalid_argument("stages: more than " + std::to_string(kMaxStages));
  uint32_t expect_begin = 0;
  for (size_t i = 0; i < m.stages.size(); ++i) {
    const StageSpec& s = m.stages[i];
    std::string path = "stages[" + std::to_string(i) + "]";
    if (s.index != i)
      return invalid_argument(path + ".index: is " + std::to_string(s.index) + ", expected " + std::to_string(i));
    if (s.layer_begin >= s.layer_end) {
      return invalid_argument(path + ".layers: [" + std::to_string(s.layer_begin) + ", " + std::to_string(s.layer_end) +
                              ") is empty");
    }
    if (s.layer_begin != expect_begin) {
      return invalid_argument(path + ".layers: starts at " + std::to_string(s.layer_begin) + ", expected " +
                              std::to_string(expect_begin) + " (ranges must be contiguous from 0)");
    }
    expect_begin = s.layer_end;
    if (s.weights.empty()) return invalid_argument(path + ".weights: a stage must list the tensors it loads");
    if (s.weights.size() > kMaxTensorsPerStage) return invalid_argument(path + ".weights: too many tensors");
    for (const auto& [name, h] : s.weights) {
      if (name.empty()) return invalid_argument(path + ".weights: empty tensor name");
      if (!is_hex_sha256(h)) return invalid_argument(path + ".weights." + name + ": expected 64 lower-case hex digits");
    }
    CML_RETURN_IF_ERROR(validate_offload(s.offload, path + ".offload"));
    if (s.offload.worker) {
      for (const Endpoint* e : {&s.control, &s.data}) {
        if (*e == *s.offload.worker)
          return invalid_argument(path + ".offload.worker: " + e->to_string() + " is the stage's own endpoint");
      }
    }
    for (size_t j = 0; j < i; ++j) {
      const StageSpec& o = m.stages[j];
      for (const Endpoint* a : {&s.control, &s.data}) {
        for (const Endpoint* b : {&o.control, &o.data}) {
          if (*a == *b)
            return invalid_argument(path + ".endpoints: " + a->to_string() + " is also used by stages[" +
                                    std::to_string(j) + "]");
        }
      }
    }
    if (s.control == s.data) return invalid_argument(path + ".endpoints: control and data are the same address");
  }
  if (expect_begin != m.model.n_layers) {
    return invalid_argument("stages: layers end at " + std::to_string(expect_begin) + " but the model has " +
                            std::to_string(m.model.n_layers));
  }
  return ok_status();
}

Result<Manifest> parse_manifest(std::string_view text) {
  CML_ASSIGN_OR_RETURN(json j, parse_bounded(text, kMaxManifestBytes, "manifest"));
  CML_RETURN_IF_ERROR(only_keys(j, "", {"format", "model", "activation", "orchestrator", "stages"}));
  CML_ASSIGN_OR_RETURN(std::string format, get_string(j, "", "format", 64));
  if (format != kManifestFormat) {
    return invalid_argument("format: '" + format + "' is not " + std::string(kManifestFormat));
  }
  Manifest m;
  CML_ASSIGN_OR_RETURN(const json* model, field(j, "", "model", json::value_t::object));
  CML_RETURN_IF_ERROR(only_keys(*model, "model", {"name", "file", "sha256", "architecture", "n_layers", "vocab_size"}));
  CML_ASSIGN_OR_RETURN(m.model.name, get_string(*model, "model", "name", 256));
  CML_ASSIGN_OR_RETURN(m.model.file, get_string(*model, "model", "file", 4096));
  CML_ASSIGN_OR_RETURN(m.model.sha256, get_string(*model, "model", "sha256", 64));
  CML_ASSIGN_OR_RETURN(m.model.architecture, get_string(*model, "model", "architecture", 64));
  CML_ASSIGN_OR_RETURN(uint64_t nl, get_uint(*model, "model", "n_layers", 1u << 16));
  CML_ASSIGN_OR_RETURN(uint64_t vocab, get_uint(*model, "model", "vocab_size", 1u << 24));
  m.model.n_layers = static_cast<uint32_t>(nl);
  m.model.vocab_size = static_cast<uint32_t>(vocab);

  CML_ASSIGN_OR_RETURN(const json* act, field(j, "", "activation", json::value_t::object));
  CML_RETURN_IF_ERROR(only_keys(*act, "activation", {"dtype", "hidden_size", "max_seq_len"}));
  CML_ASSIGN_OR_RETURN(m.activation.dtype, get_string(*act, "activation", "dtype", 16));
  CML_ASSIGN_OR_RETURN(uint64_t hs, get_uint(*act, "activation", "hidden_size", 1u << 20));
  CML_ASSIGN_OR_RETURN(uint64_t msl, get_uint(*act, "activation", "max_seq_len", 1u << 22));
  m.activation.hidden_size = static_cast<uint32_t>(hs);
  m.activation.max_seq_len = static_cast<uint32_t>(msl);

  CML_ASSIGN_OR_RETURN(const json* orch, field(j, "", "orchestrator", json::value_t::object));
  CML_RETURN_IF_ERROR(only_keys(*orch, "orchestrator", {"attest", "attestation"}));
  CML_ASSIGN_OR_RETURN(m.orchestrator.attest, get_bool(*orch, "orchestrator", "attest"));
  if (orch->contains("attestation")) {
    CML_ASSIGN_OR_RETURN(const json* oa, field(*orch, "orchestrator", "attestation", json::value_t::object));
    CML_ASSIGN_OR_RETURN(m.orchestrator.attestation, parse_attestation(*oa, "orchestrator.attestation"));
  } else if (m.orchestrator.attest) {
    return invalid_argument("orchestrator.attestation: missing (required when attest is true)");
  }

  CML_ASSIGN_OR_RETURN(const json* stages, field(j, "", "stages", json::value_t::array));
  if (stages->size() > kMaxStages) return invalid_argument("stages: more than " + std::to_string(kMaxStages));
  for (size_t i = 0; i < stages->size(); ++i) {
    const json& sj = (*stages)[i];
    std::string path = "stages[" + std::to_string(i) + "]";
    if (!sj.is_object()) return invalid_argument(path + ": expected an object");
    CML_RETURN_IF_ERROR(only_keys(sj, path, {"index", "layers", "weights", "attestation", "endpoints", "offload"}));
    StageSpec s;
    CML_ASSIGN_OR_RETURN(uint64_t idx, get_uint(sj, path, "index", kMaxStages));
    s.index = static_cast<uint32_t>(idx);
    CML_ASSIGN_OR_RETURN(const json* layers, field(sj, path, "layers", json::value_t::array));
    if (layers->size() != 2 || !(*layers)[0].is_number_unsigned() || !(*layers)[1].is_number_unsigned() ||
        (*layers)[0].get<uint64_t>() > (1u << 16) || (*layers)[1].get<uint64_t>() > (1u << 16)) {
      return invalid_argument(path + ".layers: expected [begin, end) as two non-negative integers");
    }
    s.layer_begin = (*layers)[0].get<uint32_t>();
    s.layer_end = (*layers)[1].get<uint32_t>();
    CML_ASSIGN_OR_RETURN(const json* weights, field(sj, path, "weights", json::value_t::object));
    if (weights->size() > kMaxTensorsPerStage) return invalid_argument(path + ".weights: too many tensors");
    for (const auto& [name, h] : weights->items()) {
      if (!h.is_string()) return invalid_argument(path + ".weights." + name + ": expected a hex string");
      s.weights[name] = h.get<std::string>();
    }
    CML_ASSIGN_OR_RETURN(const json* att, field(sj, path, "attestation", json::value_t::object));
    CML_ASSIGN_OR_RETURN(s.attestation, parse_attestation(*att, path + ".attestation"));
    CML_ASSIGN_OR_RETURN(const json* eps, field(sj, path, "endpoints", json::value_t::object));
    CML_RETURN_IF_ERROR(only_keys(*eps, path + ".endpoints", {"control", "data"}));
    for (auto [key, dst] : {std::pair<const char*, Endpoint*>{"control", &s.control}, {"data", &s.data}}) {
      CML_ASSIGN_OR_RETURN(std::string text, get_string(*eps, path + ".endpoints", key, 512));
      auto ep = parse_endpoint(text);
      if (!ep) return ep.status().with_context(path + ".endpoints." + key);
      *dst = *ep;
    }
    if (sj.contains("offload")) {
      CML_ASSIGN_OR_RETURN(const json* off, field(sj, path, "offload", json::value_t::object));
      CML_ASSIGN_OR_RETURN(s.offload, parse_offload(*off, path + ".offload"));
    }
    m.stages.push_back(std::move(s));
  }
  CML_RETURN_IF_ERROR(validate_manifest(m));
  return m;
}

Result<Manifest> load_manifest(const std::string& path) {
  CML_ASSIGN_OR_RETURN(Bytes b, read_file(path, kMaxManifestBytes));
  auto m = parse_manifest(as_string_view(b));
  if (!m) return m.status().with_context(path);
  return m;
}

std::string manifest_to_json(const Manifest& m) {
  json stages = json::array();
  for (const auto& s : m.stages) {
    json w = json::object();
    for (const auto& [k, v] : s.weights) w[k] = v;
    stages.push_back({{"index", s.index},
                      {"layers", {s.layer_begin, s.layer_end}},
                      {"weights", w},
                      {"attestation", attestation_to_json(s.attestation)},
                      {"endpoints", {{"control", s.control.to_string()}, {"data", s.data.to_string()}}},
                      {"offload", offload_to_json(s.offload)}});
  }
  json orch = {{"attest", m.orchestrator.attest}};
  if (m.orchestrator.attest) orch["attestation"] = attestation_to_json(m.orchestrator.attestation);
  json j = {{"format", kManifestFormat},
            {"model",
             {{"name", m.model.name},
              {"file", m.model.file},
              {"sha256", m.model.sha256},
              {"architecture", m.model.architecture},
              {"n_layers", m.model.n_layers},
              {"vocab_size", m.model.vocab_size}}},
            {"activation",
             {{"dtype", m.activation.dtype},
              {"hidden_size", m.activation.hidden_size},
              {"max_seq_len", m.activation.max_seq_len}}},
            {"orchestrator", orch},
            {"stages", stages}};
  return j.dump(2) + "\n";
}

attest::Policy policy_for(const StageAttestation& a) {
  attest::Policy p;
  p.allowed_types = {a.type};
  p.expected_measurements = a.expected_measurements;
  p.allow_debug = a.allow_debug;
  // Mock stages carry no real measurements; every real backend fails closed without them.
  p.require_measurements = a.type != attest::EvidenceType::kMock;
  return p;
}

std::string manifest_digest(const Manifest& m) {
  auto d = crypto::sha256(as_bytes(manifest_to_json(m)));
  return to_hex(d);
}

}  // namespace cml::pipeline
