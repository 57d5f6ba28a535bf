// Overloaded{lambdas…}: a visitor for std::visit built from lambdas (internal helper).
#pragma once

namespace cml::pipeline {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

}  // namespace cml::pipeline
