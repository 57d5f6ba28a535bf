#include "model/weights.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "model/safetensors.h"
#include "support/test_support.h"

namespace cml::model {
namespace {

TEST(WeightFile, DetectsFormatByContent) {
  EXPECT_EQ(parse_weight_bytes(Bytes{'G', 'G', 'U', 'F', 3, 0, 0, 0}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(parse_weight_bytes(Bytes{1, 2, 3}).is_ok());
  auto img = write_safetensors({});
  ASSERT_TRUE(img.is_ok());
  auto f = parse_weight_bytes(*img);
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  EXPECT_EQ((*f)->format(), "safetensors");
  auto missing = open_weight_file("/nonexistent/model.gguf");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  auto dir = open_weight_file(std::filesystem::temp_directory_path().string());
  EXPECT_EQ(dir.status().code(), StatusCode::kInvalidArgument);
  auto tmp = std::filesystem::temp_directory_path() / ("cml_weights_" + std::to_string(::getpid()));
  ASSERT_TRUE(write_file(tmp.string(), Bytes(64, 0x55)).is_ok());
  auto junk = open_weight_file(tmp.string());
  EXPECT_EQ(junk.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(junk.status().message().find("not a GGUF or safetensors file"), std::string::npos)
      << junk.status().to_string();
  std::filesystem::remove(tmp);
}

TEST(WeightFile, MetadataAccessorsCheckTypes) {
  std::vector<SafetensorsTensor> none;
  auto img = write_safetensors(none, {{"s", "text"}});
  auto f = parse_safetensors(*img);
  ASSERT_TRUE(f.is_ok());
  EXPECT_EQ((*f)->meta_string("s"), "text");
  EXPECT_FALSE((*f)->meta_int("s").has_value());
  EXPECT_FALSE((*f)->meta_float("s").has_value());
  EXPECT_FALSE((*f)->meta_string("absent").has_value());
}

}  // namespace
}  // namespace cml::model
