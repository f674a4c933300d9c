// remat_planner.cpp: the rotor dynamic program, its backtracking into nested
// plans, and an independent buffer-by-buffer simulator of a plan's peak.
//
// Inside the program stages are 1-based as in the paper: stage l reads a(l-1)
// and writes a(l); w(l) = size of a(l), wbar(l) = its tape. C(s, t, m) is the
// least time to back-propagate stages s..t holding a(s-1) and delta(t), where
// m counts every byte of this subproblem except a(s-1) (its owner counts it):
// delta(t) and everything created while solving. With ft/bt the stage's
// forward/backward temporaries and d(s-1) = size of delta(s-1):
//   C(s,s,m) = u_f(s) + u_b(s) if m >= max(w(s) + wbar(s) + ft(s)            [forward recording,
//                                                                               delta(s) live]
//                                     d(s-1) + w(s) + wbar(s) + bt(s))       [backward: delta(s)
//                                                                               in, delta(s-1) out]
//   keep the tape of s:  u_f(s) + u_b(s) + C(s+1, t, m - wbar(s)), needing
//       m >= w(t) + wbar(s) + ft(s)    (s runs recording while delta(t) is live)
//       m >= d(s-1) + w(s) + wbar(s) + bt(s)
//   checkpoint a(r-1), s < r <= t:  sum_{k=s}^{r-1} u_f(k) + C(r, t, m - w(r-1)) + C(s, r-1, m),
//       needing, for the tapeless sweep s..r-1 with delta(t) live,
//       m >= w(t) + [k > s] w(k-1) + w(k) + ft(k) for every k in s..r-1.
// With zero temporaries the two extra conditions are implied by the
// subproblems (each needs twice the sizes involved) and the recurrence is
// exactly DESIGN.md's; with forward temporaries they are not, and without them
// the program would accept plans that do not fit. Ties go to keeping the tape,
// then to the shortest checkpointed range.
#include "autograd/remat_planner.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace gc {

namespace {

constexpr double kInfinity = std::numeric_limits<double>::infinity();

int64_t ceil_div(int64_t numerator, int64_t denominator) {
  return numerator / denominator + (numerator % denominator != 0 ? 1 : 0);
}

void validate_chain(const Chain& chain) {
  if (chain.stages.empty()) throw std::invalid_argument("remat planner: the chain has no stages");
  if (chain.input_bytes < 0) throw std::invalid_argument("remat planner: negative input_bytes");
  for (const ChainStage& stage : chain.stages) {
    const std::string where = "remat planner: stage '" + stage.name + "': ";
    if (!std::isfinite(stage.forward_cost) || !std::isfinite(stage.backward_cost) ||
        stage.forward_cost < 0 || stage.backward_cost < 0)
      throw std::invalid_argument(where + "costs must be finite and non-negative");
    if (stage.output_bytes < 0 || stage.forward_temp_bytes < 0 || stage.backward_temp_bytes < 0)
      throw std::invalid_argument(where + "negative size");
    if (stage.tape_bytes < stage.output_bytes)
      throw std::invalid_argument(where + "tape_bytes must include the output (>= output_bytes)");
  }
}

// Sizes in slots, 1-based stages; w[0] is the chain input.
struct SlotSizes {
  std::vector<int64_t> activation;   // w(l), l = 0..n
  std::vector<int64_t> delta;        // d(l) = w(l), except d(0) = 0 without an input gradient
  std::vector<int64_t> tape;         // wbar(l), l = 1..n (index 0 unused)
  std::vector<int64_t> forward_temp;
  std::vector<int64_t> backward_temp;
  std::vector<double> forward_cost;
  std::vector<double> backward_cost;

  SlotSizes(const Chain& chain, int64_t slot_bytes) {
    const size_t n = chain.stages.size();
    activation.assign(n + 1, 0);
    delta.assign(n + 1, 0);
    tape.assign(n + 1, 0);
    forward_temp.assign(n + 1, 0);
    backward_temp.assign(n + 1, 0);
    forward_cost.assign(n + 1, 0);
    backward_cost.assign(n + 1, 0);
    activation[0] = ceil_div(chain.input_bytes, slot_bytes);
    delta[0] = chain.input_needs_gradient ? activation[0] : 0;
    for (size_t l = 1; l <= n; ++l) {
      const ChainStage& stage = chain.stages[l - 1];
      activation[l] = delta[l] = ceil_div(stage.output_bytes, slot_bytes);
      tape[l] = ceil_div(stage.tape_bytes, slot_bytes);
      forward_temp[l] = ceil_div(stage.forward_temp_bytes, slot_bytes);
      backward_temp[l] = ceil_div(stage.backward_temp_bytes, slot_bytes);
      forward_cost[l] = stage.forward_cost;
      backward_cost[l] = stage.backward_cost;
    }
  }
};

// C(s, t, m) for 1 <= s <= t <= n and 0 <= m <= max_slots, with the choice
// that achieves it: -1 infeasible, 0 keep the tape of s, r > s checkpoint a(r-1).
class RematTable {
 public:
  RematTable(const Chain& chain, int64_t slot_bytes, int64_t max_slots)
      : n_(static_cast<int>(chain.stages.size())), width_(max_slots + 1), size_(chain, slot_bytes) {
    row_offset_.assign(n_ + 2, 0);
    for (int s = 1; s <= n_; ++s) row_offset_[s + 1] = row_offset_[s] + (n_ - s + 1);
    cost_.assign(static_cast<size_t>(row_offset_[n_ + 1]) * width_, kInfinity);
    choice_.assign(cost_.size(), -1);
    for (int length = 0; length < n_; ++length)
      for (int s = 1; s + length <= n_; ++s) fill(s, s + length);
  }

  double cost(int s, int t, int64_t m) const { return m < 0 ? kInfinity : cost_[at(s, t, m)]; }

  std::vector<RematPlanItem> backtrack(int s, int t, int64_t m) const {
    std::vector<RematPlanItem> plan;
    while (true) {
      const int choice = choice_[at(s, t, m)];
      if (choice < 0) throw std::logic_error("remat planner: backtracking an infeasible entry");
      if (choice == 0) {
        plan.push_back({s - 1, s - 1, false, {}});
        if (s == t) return plan;
        m -= size_.tape[s];
        s += 1;
      } else {
        const int r = choice;
        plan.push_back({s - 1, r - 2, true, backtrack(s, r - 1, m)});
        m -= size_.activation[r - 1];
        s = r;
      }
    }
  }

 private:
  size_t at(int s, int t, int64_t m) const {
    return (static_cast<size_t>(row_offset_[s]) + static_cast<size_t>(t - s)) * width_ +
           static_cast<size_t>(m);
  }

  void fill(int s, int t) {
    const SlotSizes& z = size_;
    const double keep_cost = z.forward_cost[s] + z.backward_cost[s];
    const int64_t backward_need = z.delta[s - 1] + z.activation[s] + z.tape[s] + z.backward_temp[s];
    const int64_t forward_need = z.activation[t] + z.tape[s] + z.forward_temp[s];
    const int64_t keep_need = std::max(backward_need, forward_need);
    double* row_cost = &cost_[at(s, t, 0)];
    int32_t* row_choice = &choice_[at(s, t, 0)];
    for (int64_t m = keep_need; m < width_; ++m) {
      const double rest = s == t ? 0.0 : cost(s + 1, t, m - z.tape[s]);
      if (keep_cost + rest < row_cost[m]) {
        row_cost[m] = keep_cost + rest;
        row_choice[m] = 0;
      }
    }
    int64_t sweep_need = 0;
    double sweep_cost = 0;
    for (int r = s + 1; r <= t; ++r) {
      const int k = r - 1;  // last stage of the tapeless sweep
      sweep_need = std::max(sweep_need, (k > s ? z.activation[k - 1] : 0) + z.activation[k] +
                                            z.forward_temp[k]);
      sweep_cost += z.forward_cost[k];
      for (int64_t m = z.activation[t] + sweep_need; m < width_; ++m) {
        const double candidate =
            sweep_cost + cost(r, t, m - z.activation[r - 1]) + cost(s, r - 1, m);
        if (candidate < row_cost[m]) {
          row_cost[m] = candidate;
          row_choice[m] = r;
        }
      }
    }
  }

  int n_;
  int64_t width_;
  SlotSizes size_;
  std::vector<int64_t> row_offset_;
  std::vector<double> cost_;
  std::vector<int32_t> choice_;
};

// Executes a plan buffer by buffer (0-based stages: stage i reads a(i), writes
// a(i+1)) and records the peak of live units. Kept independent of the table's
// arithmetic so that tests can hold one against the other.
class PlanSimulator {
 public:
  PlanSimulator(const Chain& chain, int64_t unit_bytes)
      : chain_(chain), unit_bytes_(unit_bytes), n_(static_cast<int>(chain.stages.size())) {
    activation_live_.assign(n_ + 1, false);
    delta_live_.assign(n_ + 1, false);
    tape_live_.assign(n_, false);
  }

  int64_t run(const std::vector<RematPlanItem>& plan) {
    activation_live_[0] = true;
    delta_live_[n_] = true;
    live_ = activation(0) + activation(n_);
    peak_ = live_;
    run_sequence(plan, 0, n_ - 1);
    return peak_;
  }

 private:
  int64_t units(int64_t bytes) const { return ceil_div(bytes, unit_bytes_); }
  int64_t activation(int j) const {
    return units(j == 0 ? chain_.input_bytes : chain_.stages[j - 1].output_bytes);
  }
  int64_t delta(int j) const { return j == 0 && !chain_.input_needs_gradient ? 0 : activation(j); }
  bool available(int j) const { return activation_live_[j] || (j > 0 && tape_live_[j - 1]); }
  void transient(int64_t extra) { peak_ = std::max(peak_, live_ + extra); }
  static void require(bool condition, const char* what) {
    if (!condition) throw std::logic_error(std::string("remat simulator: ") + what);
  }

  void validate(const std::vector<RematPlanItem>& items, int first, int last) const {
    if (items.empty()) throw std::invalid_argument("remat plan: empty plan for a stage range");
    int expected = first;
    for (const RematPlanItem& item : items) {
      if (item.first_stage != expected || item.last_stage < item.first_stage || item.last_stage > last)
        throw std::invalid_argument("remat plan: items must cover stages " + std::to_string(first) +
                                    ".." + std::to_string(last) + " in order without gaps");
      if (!item.checkpoint && (item.first_stage != item.last_stage || !item.inner.empty()))
        throw std::invalid_argument("remat plan: a recording item covers exactly one stage");
      expected = item.last_stage + 1;
    }
    if (expected != last + 1)
      throw std::invalid_argument("remat plan: items stop before stage " + std::to_string(last));
  }

  // Precondition: a(first) available and delta(last+1) live. Postcondition:
  // delta(first) live instead of delta(last+1), everything else as before.
  void run_sequence(const std::vector<RematPlanItem>& items, int first, int last) {
    validate(items, first, last);
    for (const RematPlanItem& item : items) {
      if (!item.checkpoint) {
        const int i = item.first_stage;
        require(available(i), "recording forward without its input");
        const int64_t tape = units(chain_.stages[i].tape_bytes);
        transient(tape + units(chain_.stages[i].forward_temp_bytes));
        tape_live_[i] = true;
        live_ += tape;
        continue;
      }
      for (int i = item.first_stage; i <= item.last_stage; ++i) {
        require(available(i), "tapeless forward without its input");
        require(!activation_live_[i + 1], "activation computed twice");
        transient(activation(i + 1) + units(chain_.stages[i].forward_temp_bytes));
        activation_live_[i + 1] = true;
        live_ += activation(i + 1);
        if (i > item.first_stage) {  // the item's own input stays for the recomputation
          activation_live_[i] = false;
          live_ -= activation(i);
        }
      }
    }
    for (auto item = items.rbegin(); item != items.rend(); ++item) {
      if (!item->checkpoint) {
        const int i = item->first_stage;
        require(delta_live_[i + 1] && tape_live_[i] && available(i), "backward without its inputs");
        transient(delta(i) + units(chain_.stages[i].backward_temp_bytes));
        delta_live_[i] = true;
        live_ += delta(i);
        tape_live_[i] = false;
        delta_live_[i + 1] = false;
        live_ -= units(chain_.stages[i].tape_bytes) + delta(i + 1);
        continue;
      }
      const int b = item->last_stage;
      require(delta_live_[b + 1] && activation_live_[b + 1], "checkpointed range out of order");
      activation_live_[b + 1] = false;
      live_ -= activation(b + 1);
      run_sequence(item->inner, item->first_stage, b);
    }
  }

  const Chain& chain_;
  int64_t unit_bytes_;
  int n_;
  std::vector<bool> activation_live_;  // a(j) held on its own, j = 0..n
  std::vector<bool> delta_live_;       // delta(j), j = 0..n
  std::vector<bool> tape_live_;        // tape of stage i (a(i+1) included)
  int64_t live_ = 0;
  int64_t peak_ = 0;
};

double sequence_cost(const Chain& chain, const std::vector<RematPlanItem>& items) {
  double total = 0;
  for (const RematPlanItem& item : items) {
    if (!item.checkpoint) {
      const ChainStage& stage = chain.stages.at(item.first_stage);
      total += stage.forward_cost + stage.backward_cost;
      continue;
    }
    for (int i = item.first_stage; i <= item.last_stage; ++i)
      total += chain.stages.at(i).forward_cost;
    total += sequence_cost(chain, item.inner);
  }
  return total;
}

// Least budget in slots of slot_bytes that fits (input included), or -1 when
// it exceeds max_budget_slots.
int64_t least_budget_slots(const Chain& chain, int64_t slot_bytes, int64_t max_budget_slots) {
  const int64_t input_slots = ceil_div(chain.input_bytes, slot_bytes);
  if (input_slots > max_budget_slots) return -1;
  const RematTable table(chain, slot_bytes, max_budget_slots - input_slots);
  const int n = static_cast<int>(chain.stages.size());
  for (int64_t m = 0; m <= max_budget_slots - input_slots; ++m)
    if (table.cost(1, n, m) < kInfinity) return input_slots + m;
  return -1;
}

}  // namespace

int64_t remat_slot_bytes(int64_t budget_bytes, int slots) {
  if (slots < 1) throw std::invalid_argument("remat planner: slots must be >= 1");
  if (budget_bytes < 0) throw std::invalid_argument("remat planner: negative budget");
  return std::max<int64_t>(1, ceil_div(budget_bytes, slots));
}

RematSolution solve_remat(const Chain& chain, int64_t budget_bytes, int slots) {
  validate_chain(chain);
  RematSolution solution;
  solution.cost = kInfinity;
  solution.slot_bytes = remat_slot_bytes(budget_bytes, slots);
  solution.budget_slots = budget_bytes / solution.slot_bytes;
  const int64_t input_slots = ceil_div(chain.input_bytes, solution.slot_bytes);
  const int64_t max_slots = solution.budget_slots - input_slots;
  if (budget_bytes == 0 || max_slots < 0) return solution;
  const RematTable table(chain, solution.slot_bytes, max_slots);
  const int n = static_cast<int>(chain.stages.size());
  if (!(table.cost(1, n, max_slots) < kInfinity)) return solution;
  solution.feasible = true;
  solution.plan = table.backtrack(1, n, max_slots);
  solution.cost = plan_cost(chain, solution.plan);
  solution.simulated_peak_bytes = simulate_plan_peak(chain, solution.plan);
  // The table and the simulator model the same execution; disagreement is a bug here.
  if (simulate_plan_peak(chain, solution.plan, solution.slot_bytes) > solution.budget_slots)
    throw std::logic_error("remat planner: the chosen plan exceeds the budget in simulation");
  return solution;
}

int64_t smallest_feasible_budget(const Chain& chain, int slots) {
  validate_chain(chain);
  if (slots < 1) throw std::invalid_argument("remat planner: slots must be >= 1");
  // A budget B uses slot size q = ceil(B / slots), so budgets with slot size q
  // form the interval ((q-1) * slots, q * slots], and the intervals are ordered
  // by q. Within one, B fits iff floor(B / q) >= least(q), the least slot count
  // at slot size q; least(q) never grows with q (every size rounds to fewer or
  // equal slots). So the answer lies in the interval of the smallest q with
  // least(q) <= slots, at max((q-1) * slots + 1, least(q) * q).
  int64_t largest_size = chain.input_bytes;
  for (const ChainStage& stage : chain.stages)
    largest_size = std::max({largest_size, stage.tape_bytes, stage.forward_temp_bytes,
                             stage.backward_temp_bytes});
  const int64_t q_cap = std::max<int64_t>(1, largest_size);  // beyond it every size is 0 or 1 slot
  const int64_t no_remat_peak = simulate_plan_peak(chain, no_remat_plan(chain));
  int64_t q_fits = std::min(q_cap, std::max<int64_t>(1, ceil_div(no_remat_peak, slots)));
  while (least_budget_slots(chain, q_fits, slots) < 0) {
    if (q_fits >= q_cap)
      throw std::invalid_argument("remat planner: no budget fits with " + std::to_string(slots) +
                                  " slots; use more slots");
    q_fits = std::min(q_cap, q_fits * 2);
  }
  int64_t q_fails = 0;  // sentinel: slot size 0 never fits
  while (q_fits - q_fails > 1) {
    const int64_t q = q_fails + (q_fits - q_fails) / 2;
    (least_budget_slots(chain, q, slots) >= 0 ? q_fits : q_fails) = q;
  }
  const int64_t least = least_budget_slots(chain, q_fits, slots);
  const int64_t budget = std::max((q_fits - 1) * slots + 1, least * q_fits);
  if (!solve_remat(chain, budget, slots).feasible)
    throw std::logic_error("remat planner: smallest budget search is inconsistent");
  return budget;
}

std::vector<RematPlanItem> no_remat_plan(const Chain& chain) {
  std::vector<RematPlanItem> plan;
  for (int i = 0; i < static_cast<int>(chain.stages.size()); ++i) plan.push_back({i, i, false, {}});
  return plan;
}

double plan_cost(const Chain& chain, const std::vector<RematPlanItem>& plan) {
  simulate_plan_peak(chain, plan);  // validates the structure
  return sequence_cost(chain, plan);
}

double no_remat_cost(const Chain& chain) {
  double total = 0;
  for (const ChainStage& stage : chain.stages) total += stage.forward_cost + stage.backward_cost;
  return total;
}

double recompute_overhead_fraction(const Chain& chain, const std::vector<RematPlanItem>& plan) {
  const double baseline = no_remat_cost(chain);
  return baseline > 0 ? (plan_cost(chain, plan) - baseline) / baseline : 0.0;
}

int64_t simulate_plan_peak(const Chain& chain, const std::vector<RematPlanItem>& plan,
                           int64_t unit_bytes) {
  validate_chain(chain);
  if (unit_bytes < 1) throw std::invalid_argument("remat simulator: unit_bytes must be >= 1");
  return PlanSimulator(chain, unit_bytes).run(plan);
}

std::string describe_plan(const Chain& chain, const std::vector<RematPlanItem>& plan) {
  std::string text;
  for (const RematPlanItem& item : plan) {
    if (!text.empty()) text += ", ";
    const std::string& first = chain.stages.at(item.first_stage).name;
    if (!item.checkpoint) {
      text += first;
      continue;
    }
    text += "checkpoint[" + first;
    if (item.last_stage != item.first_stage) text += ".." + chain.stages.at(item.last_stage).name;
    text += "]{" + describe_plan(chain, item.inner) + "}";
  }
  return text;
}

}  // namespace gc
