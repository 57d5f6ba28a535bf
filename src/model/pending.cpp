// Temporary: entry points whose implementation lands in the next commits on branch tok.
#include "model/gguf.h"
#include "model/llama2c_checkpoint.h"
#include "model/safetensors.h"
#include "model/tokenizer.h"

namespace cml::model {
Result<std::unique_ptr<WeightFile>> open_gguf(const std::string&) {
  return unimplemented("GGUF loader pending");
}
Result<std::unique_ptr<WeightFile>> parse_gguf(ByteSpan) {
  return unimplemented("GGUF loader pending");
}
Result<std::unique_ptr<WeightFile>> open_safetensors(const std::string&) {
  return unimplemented("pending");
}
Result<std::unique_ptr<WeightFile>> parse_safetensors(ByteSpan) {
  return unimplemented("pending");
}
Result<std::unique_ptr<WeightFile>> open_llama2c_checkpoint(const std::string&) {
  return unimplemented("pending");
}
Result<std::unique_ptr<WeightFile>> parse_llama2c_checkpoint(ByteSpan) {
  return unimplemented("pending");
}
}  // namespace cml::model
