// Shared by the weight-file fuzz targets: reads every byte of every exposed tensor (so that ASan catches
// any pointer the loader let out of bounds) and exercises the metadata accessors.
#pragma once

#include <cstdint>
#include <variant>

#include "model/weights.h"

namespace cml::fuzz {

inline void touch_weight_file(const model::WeightFile& f) {
  volatile uint8_t sink = 0;
  for (const model::TensorRef& t : f.tensors()) {
    const auto* p = static_cast<const uint8_t*>(t.data);
    for (size_t i = 0; i < t.nbytes; i += 61) sink = sink ^ p[i];
    if (t.nbytes) sink = sink ^ p[t.nbytes - 1];
    (void)t.numel();
    (void)f.find(t.name);
  }
  for (const auto& [key, value] : f.metadata()) {
    (void)f.meta_int(key);
    (void)f.meta_float(key);
    (void)f.meta_string(key);
    (void)value.index();
  }
}

}  // namespace cml::fuzz
