// libFuzzer target: a hostile weight file (any format) driven through the model runtime: configuration
// checks, tensor lookup for whole and partial layer ranges, and a short prefill + decode. Whatever the
// bytes, the runtime must refuse them with a Status or compute without reading out of bounds.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "model/executor.h"
#include "model/weights.h"

namespace {

void drive(std::shared_ptr<const cml::model::WeightFile> file, cml::model::LayerRange range) {
  cml::model::ExecutorOptions o;
  o.threads = 1;
  o.max_context = 16;
  o.max_sequences = 2;
  auto ex = cml::model::Executor::create(std::move(file), range, o);
  if (!ex.is_ok()) return;
  auto& e = **ex;
  if (!e.start_sequence(1).is_ok()) return;
  std::vector<float> out;
  const int64_t vocab = e.config().vocab;
  if (e.takes_tokens()) {
    const std::vector<int32_t> prompt{0, static_cast<int32_t>(vocab - 1), static_cast<int32_t>(vocab / 2)};
    if (!e.forward(1, 0, prompt, out).is_ok()) return;
    const std::vector<int32_t> next{1 % static_cast<int32_t>(vocab)};
    e.forward(1, 3, next, out, true).ignore_error();
  } else {
    std::vector<float> h(static_cast<size_t>(2 * e.config().dim), 0.25f);
    e.forward_hidden(1, 0, h, out).ignore_error();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = cml::model::parse_weight_bytes({data, size});
  if (!f.is_ok()) return 0;
  std::shared_ptr<const cml::model::WeightFile> file(std::move(*f));
  drive(file, {0, -1});
  drive(file, {1, -1});
  drive(file, {0, 1});
  return 0;
}
