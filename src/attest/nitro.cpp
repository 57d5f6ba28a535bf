#include "attest/nitro.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>

#include "attest/cose.h"
#include "attest/roots.h"
#include "crypto/ecdsa.h"

namespace cml::attest {

namespace {

constexpr size_t kMaxPcrs = 32;
constexpr size_t kMaxCabundle = 8;

Status parse_optional_bytes(const cbor_item_t* map, std::string_view key, std::optional<Bytes>& out) {
  const cbor_item_t* v = cose::map_find(map, key);
  if (!v || cose::is_null(v)) return ok_status();
  auto b = cose::get_bytes(v, key);
  if (!b) return b.status();
  out = std::move(*b);
  return ok_status();
}

bool all_zero(ByteSpan b) {
  return std::all_of(b.begin(), b.end(), [](uint8_t x) { return x == 0; });
}

}  // namespace

Result<NitroDocument> parse_nitro_document(ByteSpan document) {
  if (document.size() > kMaxEvidenceSize) return invalid_argument("Nitro document larger than the evidence limit");
  CML_ASSIGN_OR_RETURN(cose::Sign1 s1, cose::parse_sign1(document));
  NitroDocument d;
  d.protected_header = std::move(s1.protected_header);
  d.payload = std::move(s1.payload);
  d.signature = std::move(s1.signature);
  d.alg = s1.alg;
  CML_ASSIGN_OR_RETURN(cose::CborPtr root, cose::decode(d.payload));
  const cbor_item_t* m = root.get();
  if (!cbor_isa_map(m)) return invalid_argument("Nitro payload is not a CBOR map");
  CML_ASSIGN_OR_RETURN(d.module_id, cose::get_text(cose::map_find(m, "module_id"), "module_id"));
  if (d.module_id.empty()) return invalid_argument("module_id is empty");
  CML_ASSIGN_OR_RETURN(d.digest, cose::get_text(cose::map_find(m, "digest"), "digest"));
  CML_ASSIGN_OR_RETURN(d.timestamp_ms, cose::get_uint(cose::map_find(m, "timestamp"), "timestamp"));
  if (d.timestamp_ms == 0) return invalid_argument("timestamp is zero");
  const cbor_item_t* pcrs = cose::map_find(m, "pcrs");
  if (!pcrs || !cbor_isa_map(pcrs)) return invalid_argument("pcrs is missing or not a map");
  if (cbor_map_size(pcrs) == 0 || cbor_map_size(pcrs) > kMaxPcrs) return invalid_argument("pcrs has a bad size");
  cbor_pair* pairs = cbor_map_handle(const_cast<cbor_item_t*>(pcrs));
  for (size_t i = 0; i < cbor_map_size(pcrs); ++i) {
    CML_ASSIGN_OR_RETURN(uint64_t idx, cose::get_uint(pairs[i].key, "PCR index"));
    if (idx >= kMaxPcrs) return invalid_argument("PCR index out of range");
    CML_ASSIGN_OR_RETURN(Bytes value, cose::get_bytes(pairs[i].value, "PCR value"));
    if (value.size() != 32 && value.size() != 48 && value.size() != 64)
      return invalid_argument("PCR" + std::to_string(idx) + " has a bad length");
    if (!d.pcrs.emplace(static_cast<int>(idx), std::move(value)).second)
      return invalid_argument("duplicate PCR" + std::to_string(idx));
  }
  CML_ASSIGN_OR_RETURN(d.certificate, cose::get_bytes(cose::map_find(m, "certificate"), "certificate"));
  const cbor_item_t* bundle = cose::map_find(m, "cabundle");
  if (!bundle || !cbor_isa_array(bundle)) return invalid_argument("cabundle is missing or not an array");
  if (cbor_array_size(bundle) == 0 || cbor_array_size(bundle) > kMaxCabundle)
    return invalid_argument("cabundle has a bad size");
  for (size_t i = 0; i < cbor_array_size(bundle); ++i) {
    CML_ASSIGN_OR_RETURN(Bytes c,
                         cose::get_bytes(cbor_array_handle(const_cast<cbor_item_t*>(bundle))[i], "cabundle entry"));
    d.cabundle.push_back(std::move(c));
  }
  CML_RETURN_IF_ERROR(parse_optional_bytes(m, "public_key", d.public_key));
  CML_RETURN_IF_ERROR(parse_optional_bytes(m, "user_data", d.user_data));
  CML_RETURN_IF_ERROR(parse_optional_bytes(m, "nonce", d.nonce));
  return d;
}

NitroVerifier::NitroVerifier(NitroVerifierOptions options) : options_(std::move(options)) {
  if (options_.roots.empty()) options_.roots.push_back(roots::aws_nitro_root_g1());
}

Result<Claims> NitroVerifier::verify(ByteSpan document, WallTime now) const {
  CML_ASSIGN_OR_RETURN(NitroDocument d, parse_nitro_document(document));
  if (!d.alg) return attestation_error("COSE protected header names no algorithm (ES384 expected)");
  if (*d.alg != cose::kAlgEs384)
    return attestation_error("COSE algorithm " + std::to_string(*d.alg) + " is not ES384 (-35)");
  if (d.digest != "SHA384") return attestation_error("document digest '" + d.digest + "' is not SHA384");

  // Chain: cabundle[0] must be a pinned root; the rest are intermediates; `certificate` is the leaf.
  const Bytes& bundle_root = d.cabundle[0];
  auto root_it = std::find_if(options_.roots.begin(), options_.roots.end(),
                              [&](const crypto::Certificate& r) { return r.der() == bundle_root; });
  if (root_it == options_.roots.end())
    return attestation_error("cabundle root is not the pinned AWS Nitro Enclaves root (wrong root)");
  std::vector<crypto::Certificate> intermediates;
  for (size_t i = 1; i < d.cabundle.size(); ++i) {
    auto c = crypto::Certificate::from_der(d.cabundle[i]);
    if (!c) return attestation_error("cabundle[" + std::to_string(i) + "]: " + c.status().message());
    intermediates.push_back(std::move(*c));
  }
  auto leaf = crypto::Certificate::from_der(d.certificate);
  if (!leaf) return attestation_error("leaf certificate: " + leaf.status().message());
  if (leaf->der() == root_it->der() || leaf->subject() == leaf->issuer())
    return attestation_error("leaf certificate is self-signed");
  std::span<const crypto::Certificate> trusted(&*root_it, 1);
  CML_RETURN_IF_ERROR(crypto::verify_chain(*leaf, intermediates, trusted, now));

  // Signature: ES384 over the Sig_structure with the leaf key (raw r‖s).
  CML_ASSIGN_OR_RETURN(crypto::PublicKey key, leaf->public_key());
  if (d.signature.size() != 96) return attestation_error("COSE signature is not a 96-byte ES384 signature");
  const Bytes tbs = cose::sig_structure(d.protected_header, d.payload);
  Status sig = crypto::ecdsa_verify(key, crypto::HashAlg::kSha384, tbs, d.signature, crypto::SignatureFormat::kRaw);
  if (!sig) return attestation_error("COSE_Sign1 signature does not verify under the leaf certificate");

  // Freshness.
  const WallTime issued = WallTime(std::chrono::milliseconds(
      static_cast<int64_t>(std::min<uint64_t>(d.timestamp_ms, uint64_t(INT64_MAX) / 1000000))));
  if (issued > now + options_.max_clock_skew)
    return attestation_error("document timestamp " + format_rfc3339(issued) + " is in the future");
  if (options_.max_age && now - issued > *options_.max_age)
    return attestation_error("document timestamp " + format_rfc3339(issued) + " is older than the allowed age");

  Claims c;
  c.type = EvidenceType::kNitro;
  c.document_hash = crypto::sha256(document);
  for (const auto& [idx, value] : d.pcrs) c.measurements["pcr" + std::to_string(idx)] = value;
  bool debug = true;
  for (int i = 0; i < 3; ++i) {
    auto it = d.pcrs.find(i);
    if (it == d.pcrs.end() || !all_zero(it->second)) debug = false;
  }
  c.debug = debug;
  if (d.public_key) c.public_key = *d.public_key;
  if (d.nonce) c.nonce = *d.nonce;
  if (d.user_data) c.user_data = *d.user_data;
  c.issued_at = issued;
  c.details["module_id"] = d.module_id;
  c.details["timestamp"] = format_rfc3339(issued);
  c.details["leaf_not_after"] = format_rfc3339(leaf->not_after());
  return c;
}

// ------------------------------------------------------------------------------------------------ provider

Bytes encode_nsm_attestation_request(ByteSpan public_key, ByteSpan nonce, ByteSpan user_data) {
  cose::CborWriter w;
  w.map(1).tstr("Attestation").map(3);
  w.tstr("user_data").bstr_or_null(user_data);
  w.tstr("nonce").bstr_or_null(nonce);
  w.tstr("public_key").bstr_or_null(public_key);
  return w.take();
}

Result<Bytes> decode_nsm_attestation_response(ByteSpan response) {
  CML_ASSIGN_OR_RETURN(cose::CborPtr root, cose::decode(response));
  if (const cbor_item_t* err = cose::map_find(root.get(), "Error")) {
    auto text = cose::get_text(err, "NSM error");
    return unavailable("NSM refused the attestation request: " + (text ? *text : std::string("unknown error")));
  }
  const cbor_item_t* att = cose::map_find(root.get(), "Attestation");
  if (!att) return invalid_argument("NSM response has neither Attestation nor Error");
  CML_ASSIGN_OR_RETURN(Bytes doc, cose::get_bytes(cose::map_find(att, "document"), "NSM attestation document"));
  if (doc.empty() || doc.size() > kMaxEvidenceSize) return invalid_argument("NSM document has a bad size");
  return doc;
}

namespace {
// Linux uapi <linux/nsm.h>: struct nsm_raw { struct nsm_iovec request, response; }, NSM_IOCTL_RAW.
struct NsmIovec {
  uint64_t addr;
  uint64_t len;
};
struct NsmRaw {
  NsmIovec request;
  NsmIovec response;
};
constexpr unsigned long kNsmIoctlRaw = _IOWR(0x0A, 0, NsmRaw);
constexpr size_t kNsmResponseMax = 0x3000;

class NsmDevice final : public NsmTransport {
 public:
  explicit NsmDevice(std::string path) : path_(std::move(path)) {}
  Result<Bytes> call(ByteSpan request) override {
    int fd = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return unavailable("cannot open " + path_ + " (not inside a Nitro enclave?)");
    Bytes req(request.begin(), request.end());
    Bytes resp(kNsmResponseMax);
    NsmRaw raw{{reinterpret_cast<uint64_t>(req.data()), req.size()},
               {reinterpret_cast<uint64_t>(resp.data()), resp.size()}};
    int rc = ::ioctl(fd, kNsmIoctlRaw, &raw);
    ::close(fd);
    if (rc != 0) return unavailable("NSM ioctl failed on " + path_);
    if (raw.response.len > resp.size()) return internal_error("NSM response length out of range");
    resp.resize(raw.response.len);
    return resp;
  }

 private:
  std::string path_;
};
}  // namespace

std::unique_ptr<NsmTransport> open_nsm_device(const std::string& path) {
  return std::make_unique<NsmDevice>(path);
}

Result<Evidence> NitroProvider::attest(ByteSpan public_key, ByteSpan nonce) {
  if (public_key.size() > 1024 || nonce.size() > 512) return invalid_argument("public key or nonce too large for NSM");
  std::lock_guard<std::mutex> lock(mu_);
  CML_ASSIGN_OR_RETURN(Bytes resp, transport_->call(encode_nsm_attestation_request(public_key, nonce)));
  CML_ASSIGN_OR_RETURN(Bytes doc, decode_nsm_attestation_response(resp));
  return Evidence{EvidenceType::kNitro, std::move(doc)};
}

}  // namespace cml::attest
