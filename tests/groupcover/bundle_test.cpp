#include "groupcover/bundle.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "crypto/random.h"
#include "groupcover/model_bundle.h"
#include "test_util.h"

namespace cml::groupcover {
namespace {

ObfuscatedModel small_model(std::vector<std::vector<float>>& keep) {
  keep.push_back(testing::random_matrix(12, 8, 1));
  keep.push_back(testing::random_matrix(6, 12, 2));
  keep.push_back(testing::random_matrix(1, 6, 3));  // bias of the second
  std::vector<NamedMatrix> m = {
      {"a.weight", {keep[0].data(), tensor::DType::kF32, 12, 8, false}, nullptr},
      {"b.weight", {keep[1].data(), tensor::DType::kF32, 6, 12, false}, keep[2].data()},
  };
  auto om = obfuscate_model(m, {});
  CML_CHECK(om.is_ok());
  return *om;
}

TEST(Bundle, WorkerBundleRoundTripAndHostileInput) {
  std::vector<std::vector<float>> keep;
  auto om = small_model(keep);
  auto again = parse_worker_bundle(om.worker->storage);
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(again->digest, om.worker->digest);
  ASSERT_EQ(again->matrices.size(), 2u);
  EXPECT_EQ(again->matrices[1].out, 6u);
  // Truncated, extended, bad magic, lying count.
  Bytes b = om.worker->storage;
  b.pop_back();
  EXPECT_EQ(parse_worker_bundle(b).status().code(), StatusCode::kInvalidArgument);
  b = om.worker->storage;
  b.push_back(0);
  EXPECT_FALSE(parse_worker_bundle(b).is_ok());
  b = om.worker->storage;
  b[0] = 'X';
  EXPECT_FALSE(parse_worker_bundle(b).is_ok());
  b = om.worker->storage;
  store_u32_be(b.data() + 12, 0xFFFFFFFFu);
  EXPECT_FALSE(parse_worker_bundle(b).is_ok());
  b = om.worker->storage;
  b[16] = 0xFF;  // first matrix's out becomes huge
  b[17] = 0xFF;
  EXPECT_FALSE(parse_worker_bundle(b).is_ok());
}

TEST(Bundle, SealedTeeBundleRoundTripWrongKeyAndTamper) {
  std::vector<std::vector<float>> keep;
  auto om = small_model(keep);
  auto key = crypto::random_secret(32);
  auto sealed = seal_tee_bundle(*om.secrets, key.span());
  ASSERT_TRUE(sealed.is_ok());
  auto opened = open_tee_bundle(*sealed, key.span());
  ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
  ASSERT_EQ(opened->entries.size(), 2u);
  EXPECT_EQ(opened->entries[1].name, "b.weight");
  EXPECT_EQ(opened->entries[1].secrets.perm, om.secrets->entries[1].secrets.perm);
  EXPECT_EQ(opened->entries[1].secrets.inv_mix, om.secrets->entries[1].secrets.inv_mix);
  EXPECT_EQ(opened->entries[1].secrets.bias, om.secrets->entries[1].secrets.bias);
  EXPECT_EQ(opened->worker_digest, om.worker->digest);
  auto other = crypto::random_secret(32);
  EXPECT_EQ(open_tee_bundle(*sealed, other.span()).status().code(), StatusCode::kCrypto);
  for (size_t pos : {size_t(9), size_t(45), sealed->size() / 2, sealed->size() - 1}) {
    Bytes t = *sealed;
    t[pos] ^= 1;
    EXPECT_FALSE(open_tee_bundle(t, key.span()).is_ok()) << pos;
  }
  EXPECT_FALSE(open_tee_bundle(ByteSpan(sealed->data(), 40), key.span()).is_ok());
  // The sealed bytes hold no plaintext secret: the permutation's encoding does not appear.
  Bytes plain = encode_tee_secrets(*om.secrets);
  EXPECT_EQ(std::search(sealed->begin(), sealed->end(), plain.begin() + 60, plain.begin() + 92), sealed->end());
}

TEST(Bundle, SecretsParserRefusesInconsistentData) {
  std::vector<std::vector<float>> keep;
  auto om = small_model(keep);
  Bytes plain = encode_tee_secrets(*om.secrets);
  ASSERT_TRUE(parse_tee_secrets(plain).is_ok());
  // Every truncation fails cleanly.
  for (size_t n = 0; n < plain.size(); n += 7) EXPECT_FALSE(parse_tee_secrets(ByteSpan(plain.data(), n)).is_ok());
  // A broken permutation (duplicate index) is refused.
  TeeSecrets s = *om.secrets;
  s.entries[0].secrets.perm[0] = s.entries[0].secrets.perm[1];
  EXPECT_FALSE(parse_tee_secrets(encode_tee_secrets(s)).is_ok());
  s = *om.secrets;
  s.entries[1].name = s.entries[0].name;
  EXPECT_FALSE(parse_tee_secrets(encode_tee_secrets(s)).is_ok());
  s = *om.secrets;
  s.entries[0].secrets.group_rows[0] = s.entries[0].secrets.group_rows[1];
  EXPECT_FALSE(parse_tee_secrets(encode_tee_secrets(s)).is_ok());
}

TEST(Bundle, DirectoryRoundTripAndOperatorKeyFile) {
  std::vector<std::vector<float>> keep;
  auto om = small_model(keep);
  const std::string dir = ::testing::TempDir() + "/gcover_bundle_" + std::to_string(::getpid());
  const std::string key_path = dir + ".key";
  auto key = crypto::random_secret(32);
  ASSERT_TRUE(write_file(key_path, as_bytes(to_hex(key.span()) + "\n")).is_ok());
  auto loaded_key = load_operator_key(key_path);
  ASSERT_TRUE(loaded_key.is_ok());
  EXPECT_TRUE(constant_time_equal(loaded_key->span(), key.span()));
  ASSERT_TRUE(write_bundle_dir(dir, om, key.span()).is_ok());
  auto back = read_bundle_dir(dir, key.span());
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(back->worker->digest, om.worker->digest);
  ASSERT_TRUE(write_file(key_path, as_bytes("short")).is_ok());
  EXPECT_FALSE(load_operator_key(key_path).is_ok());
  std::filesystem::remove_all(dir);
  std::filesystem::remove(key_path);
}

}  // namespace
}  // namespace cml::groupcover
