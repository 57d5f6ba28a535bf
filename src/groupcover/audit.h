// Security evaluation of a GroupCover deployment from the attacker's seat (`cml groupcover audit`):
// the attacker holds the worker bundle (W'') and a transcript of everything the worker received and
// returned. The audit obfuscates the given matrices afresh, runs a masked session against an
// in-process worker that records its transcript, and measures:
//   * per matrix: the best |cosine| of each obfuscated row to any true row — with π known (W'' columns
//     put back in place) and without — and how much of π a column-matching attack recovers;
//   * transcript: the best |cosine| of any masked input the worker saw to its true activation (permuted
//     or not) and to any true weight row, and of any returned row to the true output;
//   * masks: duplicates among all masks drawn over the run (must be 0).
//
// Thread safety: run_audit is self-contained.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <span>
#include <string>
#include <vector>

#include "groupcover/model_bundle.h"

namespace cml::groupcover {

struct AuditOptions {
  int64_t calls = 2000;             // masked requests in the recorded session
  int64_t sample_rows = 512;        // obfuscated rows compared per matrix (all if fewer)
  int64_t sample_cols_rows = 4096;  // rows used in the column-matching attack
  double mask_scale = 4.0;
};

struct MatrixAudit {
  std::string name;
  int64_t out = 0, in = 0;
  double best_cos_perm_known_max = 0, best_cos_perm_known_median = 0;
  double best_cos_perm_unknown_max = 0;
  double perm_recovered_fraction = 0;  // columns matched to their true position by cosine
  double chance_fraction = 0;          // 1/in
};

struct AuditReport {
  std::vector<MatrixAudit> matrices;
  int64_t requests = 0, rows = 0;
  double max_cos_input_vs_activation = 0;    // cos(z, x̃): masked input vs permuted activation
  double max_cos_input_vs_unpermuted = 0;    // cos(z, x)
  double max_cos_input_vs_weight_row = 0;    // any true weight row in what the worker received
  double max_cos_output_vs_true_output = 0;  // cos(Z, W x)
  // Control: the same statistics for an independent uniform vector in place of what the worker saw
  // (chance level in this dimension over this many samples). Values near the control mean no signal.
  double control_max_cos_random_vs_activation = 0;
  double control_max_cos_random_vs_output = 0;
  int64_t masks_drawn = 0, mask_duplicates = 0, input_duplicates = 0;
  ObfuscationStats obfuscation;
};

Result<AuditReport> run_audit(std::span<const NamedMatrix> matrices, const ObfuscationConfig& config,
                              const AuditOptions& options);
void to_json(nlohmann::json& j, const AuditReport& r);

}  // namespace cml::groupcover
