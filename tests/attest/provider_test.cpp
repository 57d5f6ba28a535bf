// Providers against fakes: configfs-tsm on a temporary directory tree whose outblob is produced by the test
// signer when inblob is written (as the kernel would), and the NSM CBOR protocol over a fake transport.
// The real /dev/nsm ioctl, /dev/sev-guest ioctl and /sys/kernel/config/tsm only exist inside TEEs.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "attest/cose.h"
#include "attest/nitro.h"
#include "attest/sev_snp.h"
#include "attest/tdx.h"
#include "attest/test_signer.h"
#include "support/test_support.h"

namespace cml::attest {
namespace {

namespace fs = std::filesystem;

// configfs emulation: mkdir creates the attribute files; writing inblob generates the report.
class FakeTsm : public TsmFs {
 public:
  FakeTsm(std::shared_ptr<const TestSigner> signer, std::string provider)
      : signer_(std::move(signer)), provider_(std::move(provider)) {}
  Status make_dir(const std::string& path) override {
    CML_RETURN_IF_ERROR(TsmFs::make_dir(path));
    CML_RETURN_IF_ERROR(write_file(path + "/generation", as_bytes("0\n")));
    CML_RETURN_IF_ERROR(write_file(path + "/provider", as_bytes(provider_ + "\n")));
    ++entries_made;
    return ok_status();
  }
  Status remove_dir(const std::string& path) override {
    std::error_code ec;
    fs::remove_all(path, ec);
    ++entries_removed;
    return ok_status();
  }
  Status write(const std::string& path, ByteSpan data) override {
    CML_RETURN_IF_ERROR(TsmFs::write(path, data));
    const std::string dir = fs::path(path).parent_path();
    if (fs::path(path).filename() == "privlevel") privlevel = std::string(as_string_view(data));
    if (fs::path(path).filename() != "inblob") return ok_status();
    if (data.size() != 64) return invalid_argument("inblob must be 64 bytes");
    Bytes out, aux;
    if (provider_ == "sev_guest") {
      CML_ASSIGN_OR_RETURN(Bytes doc, signer_->snp_document(data));
      out.assign(doc.begin(), doc.begin() + kSnpReportSize);
      aux.assign(doc.begin() + kSnpReportSize, doc.end());
    } else {
      CML_ASSIGN_OR_RETURN(out, signer_->tdx_quote(data));
    }
    CML_RETURN_IF_ERROR(write_file(dir + "/outblob", out));
    if (!aux.empty()) CML_RETURN_IF_ERROR(write_file(dir + "/auxblob", aux));
    const int gen = race ? 2 : 1;  // a racing writer bumps the generation twice
    return write_file(dir + "/generation", as_bytes(std::to_string(gen) + "\n"));
  }
  bool race = false;
  int entries_made = 0, entries_removed = 0;
  std::string privlevel;

 private:
  std::shared_ptr<const TestSigner> signer_;
  std::string provider_;
};

class ProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    now_ = Clock::system().now();
    signer_ = TestSigner::create(now_ - std::chrono::hours(1), now_ + std::chrono::hours(24)).value();
    root_ = fs::temp_directory_path() / ("cml-tsm-" + std::to_string(::getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(root_);
    for (size_t i = 0; i < 32; ++i) pk_[i] = uint8_t(i), nonce_[i] = uint8_t(0xf0 - i);
  }
  void TearDown() override { fs::remove_all(root_); }
  WallTime now_;
  std::shared_ptr<const TestSigner> signer_;
  fs::path root_;
  std::array<uint8_t, 32> pk_{}, nonce_{};
};

TEST_F(ProviderTest, SnpThroughConfigfsTsm) {
  auto fake = std::make_shared<FakeTsm>(signer_, "sev_guest");
  SnpProvider::Options o;
  o.tsm_root = root_.string();
  o.privlevel = 0;
  SnpProvider p(o, fake);
  auto ev = p.attest(pk_, nonce_);
  CML_ASSERT_OK(ev);
  EXPECT_EQ(ev->type, EvidenceType::kSevSnp);
  EXPECT_GT(ev->document.size(), kSnpReportSize);  // report ‖ certificate table from auxblob
  auto c = SnpVerifier(signer_->snp_options()).verify(ev->document, now_);
  CML_ASSERT_OK(c);
  EXPECT_TRUE(check_binding(*c, pk_, nonce_).is_ok());
  EXPECT_EQ(fake->entries_made, 1);
  EXPECT_EQ(fake->entries_removed, 1);  // the entry is always removed
  EXPECT_EQ(fake->privlevel, "0");
  EXPECT_TRUE(fs::is_empty(root_));
}

TEST_F(ProviderTest, TdxThroughConfigfsTsm) {
  auto fake = std::make_shared<FakeTsm>(signer_, "tdx_guest");
  TdxProvider p(root_.string(), fake);
  auto ev = p.attest(pk_, nonce_);
  CML_ASSERT_OK(ev);
  auto c = TdxVerifier(signer_->tdx_options()).verify(ev->document, now_);
  CML_ASSERT_OK(c);
  EXPECT_TRUE(check_binding(*c, pk_, nonce_).is_ok());
}

TEST_F(ProviderTest, ConfigfsGenerationRaceAndWrongProviderAreErrors) {
  auto fake = std::make_shared<FakeTsm>(signer_, "tdx_guest");
  fake->race = true;
  TdxProvider p(root_.string(), fake);
  auto ev = p.attest(pk_, nonce_);
  ASSERT_FALSE(ev.is_ok());
  EXPECT_EQ(ev.status().code(), StatusCode::kAborted);
  EXPECT_EQ(fake->entries_removed, 1);
  auto snp_on_tdx = std::make_shared<FakeTsm>(signer_, "tdx_guest");
  SnpProvider::Options o;
  o.tsm_root = root_.string();
  auto wrong = SnpProvider(o, snp_on_tdx).attest(pk_, nonce_);
  EXPECT_FALSE(wrong.is_ok());
}

TEST_F(ProviderTest, MissingConfigfsAndBadKeySizes) {
  TdxProvider p((root_ / "absent").string());
  auto ev = p.attest(pk_, nonce_);
  ASSERT_FALSE(ev.is_ok());
  EXPECT_EQ(ev.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(p.attest(Bytes(31), nonce_).status().code(), StatusCode::kInvalidArgument);
  SnpProvider::Options o;
  o.tsm_root = (root_ / "absent").string();
  o.sev_guest_path = (root_ / "no-sev-guest").string();
  auto s = SnpProvider(o).attest(pk_, nonce_);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.status().code(), StatusCode::kUnavailable);
}

// The NSM device speaks CBOR; a fake transport answers like the NSM would.
class FakeNsm : public NsmTransport {
 public:
  explicit FakeNsm(std::shared_ptr<const TestSigner> s) : s_(std::move(s)) {}
  Result<Bytes> call(ByteSpan request) override {
    last_request.assign(request.begin(), request.end());
    if (fail) {
      cose::CborWriter w;
      w.map(1).tstr("Error").tstr("InvalidArgument");
      return w.take();
    }
    CML_ASSIGN_OR_RETURN(auto root, cose::decode(request));
    const cbor_item_t* att = cose::map_find(root.get(), "Attestation");
    CML_ASSIGN_OR_RETURN(Bytes pk, cose::get_bytes(cose::map_find(att, "public_key"), "public_key"));
    CML_ASSIGN_OR_RETURN(Bytes nonce, cose::get_bytes(cose::map_find(att, "nonce"), "nonce"));
    if (!cose::is_null(cose::map_find(att, "user_data"))) return invalid_argument("user_data must be null");
    CML_ASSIGN_OR_RETURN(Bytes doc, s_->nitro_document(pk, nonce));
    cose::CborWriter w;
    w.map(1).tstr("Attestation").map(1).tstr("document").bstr(doc);
    return w.take();
  }
  Bytes last_request;
  bool fail = false;

 private:
  std::shared_ptr<const TestSigner> s_;
};

TEST_F(ProviderTest, NitroThroughNsmProtocol) {
  auto nsm = std::make_unique<FakeNsm>(signer_);
  FakeNsm* raw = nsm.get();
  NitroProvider p(std::move(nsm));
  auto ev = p.attest(pk_, nonce_);
  CML_ASSERT_OK(ev);
  auto c = NitroVerifier(signer_->nitro_options()).verify(ev->document, now_);
  CML_ASSERT_OK(c);
  EXPECT_TRUE(check_binding(*c, pk_, nonce_).is_ok());
  EXPECT_FALSE(raw->last_request.empty());
  raw->fail = true;
  auto err = p.attest(pk_, nonce_);
  ASSERT_FALSE(err.is_ok());
  EXPECT_NE(err.status().message().find("InvalidArgument"), std::string::npos);
  EXPECT_FALSE(decode_nsm_attestation_response(Bytes{0xa0}).is_ok());
  auto dev = open_nsm_device((root_ / "nsm").string())->call(Bytes{0xa0});
  EXPECT_EQ(dev.status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace cml::attest
