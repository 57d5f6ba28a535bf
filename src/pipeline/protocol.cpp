#include "pipeline/protocol.h"

#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "pipeline/json_util.h"
#include "pipeline/overloaded.h"

namespace cml::pipeline {

using nlohmann::json;
using namespace json_util;

namespace {

constexpr uint64_t kMaxId = (1ull << 53);  // JSON-safe integers
constexpr size_t kMaxCtlSeqs = kMaxStepSequences;

json sampling_json(const Sampling& s) {
  return {{"temperature", s.temperature}, {"top_k", s.top_k}, {"top_p", s.top_p}, {"seed", s.seed}};
}

Result<Sampling> parse_sampling(const json& j, const std::string& path) {
  CML_RETURN_IF_ERROR(only_keys(j, path, {"temperature", "top_k", "top_p", "seed"}));
  Sampling s;
  auto it = j.find("temperature");
  if (it == j.end() || !it->is_number()) return invalid_argument(path + ".temperature: expected a number");
  double t = it->get<double>();
  if (!std::isfinite(t) || t < 0 || t > 100) return invalid_argument(path + ".temperature: must be in [0, 100]");
  s.temperature = static_cast<float>(t);
  auto tp = j.find("top_p");
  if (tp == j.end() || !tp->is_number()) return invalid_argument(path + ".top_p: expected a number");
  double pv = tp->get<double>();
  if (!std::isfinite(pv) || pv <= 0 || pv > 1) return invalid_argument(path + ".top_p: must be in (0, 1]");
  s.top_p = static_cast<float>(pv);
  CML_ASSIGN_OR_RETURN(uint64_t k, get_uint(j, path, "top_k", 1u << 24));
  s.top_k = static_cast<uint32_t>(k);
  CML_ASSIGN_OR_RETURN(s.seed, get_uint(j, path, "seed"));
  return s;
}

Result<std::vector<uint64_t>> parse_ids(const json& j, const std::string& path, std::string_view key) {
  CML_ASSIGN_OR_RETURN(const json* a, field(j, path, key, json::value_t::array));
  if (a->size() > kMaxCtlSeqs) return invalid_argument(path + "." + std::string(key) + ": too many entries");
  std::vector<uint64_t> out;
  for (const auto& e : *a) {
    if (!e.is_number_unsigned() || e.get<uint64_t>() > kMaxId) {
      return invalid_argument(path + "." + std::string(key) + ": expected sequence ids");
    }
    out.push_back(e.get<uint64_t>());
  }
  return out;
}

}  // namespace

std::string_view control_type(const ControlMessage& m) {
  static constexpr std::string_view kNames[] = {"init",  "link",   "start",   "abort", "ping",  "shutdown",
                                                "ready", "linked", "started", "pong",  "error", "bye"};
  return kNames[m.index()];
}

Bytes encode_control(const ControlMessage& m) {
  json j = {{"v", kControlVersion}, {"type", std::string(control_type(m))}};
  std::visit(Overloaded{
                 [&](const ctl::Init& x) {
                   j["manifest_sha256"] = x.manifest_sha256;
                   j["stage"] = x.stage;
                   j["session"] = x.session;
                 },
                 [&](const ctl::Link& x) {
                   j["downstream"] = x.downstream;
                   j["to_orchestrator"] = x.downstream_is_orchestrator;
                 },
                 [&](const ctl::Start& x) {
                   json a = json::array();
                   for (const auto& s : x.seqs) a.push_back({{"seq", s.seq}, {"sampling", sampling_json(s.sampling)}});
                   j["seqs"] = a;
                 },
                 [&](const ctl::Abort& x) {
                   j["seqs"] = x.seqs;
                   j["reason"] = x.reason;
                 },
                 [&](const ctl::Ping& x) { j["nonce"] = x.nonce; },
                 [&](const ctl::Shutdown&) {},
                 [&](const ctl::Ready& x) {
                   j["stage"] = x.stage;
                   j["session"] = x.session;
                   j["tensors_verified"] = x.tensors_verified;
                 },
                 [&](const ctl::Linked& x) { j["stage"] = x.stage; },
                 [&](const ctl::Started& x) { j["stage"] = x.stage; },
                 [&](const ctl::Pong& x) {
                   j["nonce"] = x.nonce;
                   j["stage"] = x.stage;
                   j["steps"] = x.steps;
                   j["compute_us"] = x.compute_us;
                   j["live_sequences"] = x.live_sequences;
                   j["in_frames"] = x.in_frames;
                   j["in_bytes"] = x.in_bytes;
                   j["out_frames"] = x.out_frames;
                   j["out_bytes"] = x.out_bytes;
                 },
                 [&](const ctl::Error& x) {
                   j["stage"] = x.stage;
                   j["step"] = x.step;
                   j["code"] = x.code;
                   j["message"] = x.message;
                 },
                 [&](const ctl::Bye& x) { j["stage"] = x.stage; },
             },
             m);
  return to_bytes(j.dump());
}

Result<ControlMessage> decode_control(ByteSpan bytes, size_t max_bytes) {
  CML_ASSIGN_OR_RETURN(json j, parse_bounded(as_string_view(bytes), max_bytes, "control message"));
  if (!j.is_object()) return invalid_argument("control message: expected an object");
  CML_ASSIGN_OR_RETURN(uint64_t v, get_uint(j, "", "v"));
  if (v != kControlVersion) {
    return protocol_error("control message version " + std::to_string(v) + ", this build speaks " +
                          std::to_string(kControlVersion));
  }
  CML_ASSIGN_OR_RETURN(std::string type, get_string(j, "", "type", 32));
  const std::string p = type;
  auto u32 = [&](std::string_view key) -> Result<uint32_t> {
    CML_ASSIGN_OR_RETURN(uint64_t x, get_uint(j, p, key, UINT32_MAX));
    return static_cast<uint32_t>(x);
  };
  if (type == "init") {
    CML_RETURN_IF_ERROR(only_keys(j, p, {"v", "type", "manifest_sha256", "stage", "session"}));
    ctl::Init m;
    CML_ASSIGN_OR_RETURN(m.manifest_sha256, get_string(j, p, "manifest_sha256", 64));
    CML_ASSIGN_OR_RETURN(m.stage, u32("stage"));
    CML_ASSIGN_OR_RETURN(m.session, get_uint(j, p, "session"));
    return ControlMessage(m);
  }
  if (type == "link") {
    CML_RETURN_IF_ERROR(only_keys(j, p, {"v", "type", "downstream", "to_orchestrator"}));
    ctl::Link m;
    CML_ASSIGN_OR_RETURN(m.downstream, get_string(j, p, "downstream", 512));
    CML_ASSIGN_OR_RETURN(m.downstream_is_orchestrator, get_bool(j, p, "to_orchestrator"));
    return ControlMessage(m);
  }
  if (type == "start") {
    CML_RETURN_IF_ERROR(only_keys(j, p, {"v", "type", "seqs"}));
    CML_ASSIGN_OR_RETURN(const json* a, field(j, p, "seqs", json::value_t::array));
    if (a->size() > kMaxCtlSeqs) return invalid_argument("start.seqs: too many entries");
    ctl::Start m;
    std::set<uint64_t> seen;
    for (size_t i = 0; i < a->size(); ++i) {
      std::string ep = "start.seqs[" + std::to_string(i) + "]";
      const json& e = (*a)[i];
      CML_RETURN_IF_ERROR(only_keys(e, ep, {"seq", "sampling"}));
      ctl::SeqStart s;
      CML_ASSIGN_OR_RETURN(s.seq, get_uint(e, ep, "seq", kMaxId));
      if (!seen.insert(s.seq).second) return invalid_argument(ep + ".seq: duplicate");
      CML_ASSIGN_OR_RETURN(const json* sj, field(e, ep, "sampling", json::value_t::object));
      CML_ASSIGN_OR_RETURN(s.sampling, parse_sampling(*sj, ep + ".sampling"));
      m.seqs.push_back(s);
    }
    return ControlMessage(m);
  }
  if (type == "abort") {
    CML_RETURN_IF_ERROR(only_keys(j, p, {"v", "type", "seqs", "reason"}));
    ctl::Abort m;
    CML_ASSIGN_OR_RETURN(m.seqs, parse_ids(j, p, "seqs"));
    CML_ASSIGN_OR_RETURN(m.reason, get_string(j, p, "reason", 1024));
    return ControlMessage(m);
  }
  if (type == "ping") {
    CML_RETURN_IF_ERROR(only_keys(j, p, {"v", "type", "nonce"}));
    ctl::Ping m;
    CML_ASSIGN_OR_RETURN(m.nonce, get_uint(j, p, "nonce"));
    return ControlMessage(m);
  }
  if (type == "shutdown") {
    CML_RETURN_IF_ERROR(only_keys(j, p, {"v", "type"}));
    return ControlMessage(ctl::Shutdown{});
  }
  if (type == "ready") {
    CML_RETURN_IF_ERROR(only_keys(j, p, {"v", "type", "stage", "session", "tensors_verified"}));
    ctl::Ready m;
    CML_ASSIGN_OR_RETURN(m.stage, u32("stage"));
    CML_ASSIGN_OR_RETURN(m.session, get_uint(j, p, "session"));
    CML_ASSIGN_OR_RETURN(m.tensors_verified, u32("tensors_verified"));
    return ControlMessage(m);
  }
  if (type == "linked") {
    CML_RETURN_IF_ERROR(only_keys(j, p, {"v", "type", "stage"}));
    ctl::Linked m;
    CML_ASSIGN_OR_RETURN(m.stage, u32("stage"));
    return ControlMessage(m);
  }
  if (type == "started") {
    CML_RETURN_IF_ERROR(only_keys(j, p, {"v", "type", "stage"}));
    ctl::Started m;
    CML_ASSIGN_OR_RETURN(m.stage, u32("stage"));
    return ControlMessage(m);
  }
  if (type == "pong") {
    CML_RETURN_IF_ERROR(only_keys(j, p,
                                  {"v", "type", "nonce", "stage", "steps", "compute_us", "live_sequences", "in_frames",
                                   "in_bytes", "out_frames", "out_bytes"}));
    ctl::Pong m;
    CML_ASSIGN_OR_RETURN(m.nonce, get_uint(j, p, "nonce"));
    CML_ASSIGN_OR_RETURN(m.stage, u32("stage"));
    CML_ASSIGN_OR_RETURN(m.steps, get_uint(j, p, "steps"));
    CML_ASSIGN_OR_RETURN(m.compute_us, get_uint(j, p, "compute_us"));
    CML_ASSIGN_OR_RETURN(m.live_sequences, u32("live_sequences"));
    CML_ASSIGN_OR_RETURN(m.in_frames, get_uint(j, p, "in_frames"));
    CML_ASSIGN_OR_RETURN(m.in_bytes, get_uint(j, p, "in_bytes"));
    CML_ASSIGN_OR_RETURN(m.out_frames, get_uint(j, p, "out_frames"));
    CML_ASSIGN_OR_RETURN(m.out_bytes, get_uint(j, p, "out_bytes"));
    return ControlMessage(m);
  }
  if (type == "error") {
    CML_RETURN_IF_ERROR(only_keys(j, p, {"v", "type", "stage", "step", "code", "message"}));
    ctl::Error m;
    CML_ASSIGN_OR_RETURN(m.stage, u32("stage"));
    CML_ASSIGN_OR_RETURN(m.step, get_uint(j, p, "step"));
    CML_ASSIGN_OR_RETURN(m.code, get_string(j, p, "code", 64));
    CML_ASSIGN_OR_RETURN(m.message, get_string(j, p, "message", 4096));
    return ControlMessage(m);
  }
  if (type == "bye") {
    CML_RETURN_IF_ERROR(only_keys(j, p, {"v", "type", "stage"}));
    ctl::Bye m;
    CML_ASSIGN_OR_RETURN(m.stage, u32("stage"));
    return ControlMessage(m);
  }
  return invalid_argument("control message: unknown type '" + type + "'");
}

uint64_t StepHeader::total_tokens() const {
  uint64_t n = 0;
  for (const auto& s : seqs) n += s.len;
  return n;
}

std::vector<int64_t> encode_step_header(const StepHeader& h) {
  std::vector<int64_t> v;
  v.reserve(2 + 3 * h.seqs.size());
  v.push_back(static_cast<int64_t>(h.step));
  v.push_back(static_cast<int64_t>(h.seqs.size()));
  for (const auto& s : h.seqs) {
    v.push_back(static_cast<int64_t>(s.seq));
    v.push_back(s.pos);
    v.push_back(s.len);
  }
  return v;
}

Result<StepHeader> decode_step_header(std::span<const int64_t> v, uint32_t max_seq_len) {
  if (v.size() < 2) return invalid_argument("step header: shorter than 2 elements");
  if (v[0] <= 0) return invalid_argument("step header: step id must be positive");
  if (v[1] <= 0 || v[1] > kMaxStepSequences) return invalid_argument("step header: bad sequence count");
  const size_t n = static_cast<size_t>(v[1]);
  if (v.size() != 2 + 3 * n) return invalid_argument("step header: length does not match its sequence count");
  StepHeader h;
  h.step = static_cast<uint64_t>(v[0]);
  std::set<uint64_t> seen;
  for (size_t i = 0; i < n; ++i) {
    int64_t seq = v[2 + 3 * i], pos = v[3 + 3 * i], len = v[4 + 3 * i];
    if (seq < 0 || pos < 0 || len <= 0 || pos >= max_seq_len || len > max_seq_len || pos + len > max_seq_len) {
      return invalid_argument("step header: sequence " + std::to_string(i) + " has a bad id, position or length");
    }
    if (!seen.insert(static_cast<uint64_t>(seq)).second) {
      return invalid_argument("step header: sequence " + std::to_string(seq) + " appears twice");
    }
    h.seqs.push_back({static_cast<uint64_t>(seq), static_cast<uint32_t>(pos), static_cast<uint32_t>(len)});
  }
  return h;
}

std::string make_step_error(uint64_t step, std::string_view reason) {
  std::string r = std::to_string(step) + ":" + std::string(reason.substr(0, 900));
  return r;
}

uint64_t step_of_error(std::string_view reason) {
  uint64_t step = 0;
  auto colon = reason.find(':');
  if (colon == std::string_view::npos) return 0;
  auto [ptr, ec] = std::from_chars(reason.data(), reason.data() + colon, step);
  if (ec != std::errc() || ptr != reason.data() + colon) return 0;
  return step;
}

}  // namespace cml::pipeline
