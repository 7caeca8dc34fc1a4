// cache.cpp — see cache.h.
#include "plan/cache.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>

namespace flashattn::plan {

namespace {

struct KeyHash {
  size_t operator()(const PlanKey& k) const {
    // FNV-1a over the key's bytes (plan_key zero-fills the padding).
    unsigned char bytes[sizeof(PlanKey)];
    std::memcpy(bytes, &k, sizeof bytes);
    uint64_t h = 1469598103934665603ull;
    for (unsigned char b : bytes) h = (h ^ b) * 1099511628211ull;
    return static_cast<size_t>(h);
  }
};

// Enough distinct shapes for any server; past it the table starts over rather than growing.
constexpr size_t kMaxEntries = 4096;

bool aligned16(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }

bool pointers_aligned(Op op, const AttnParams& p) {
  const void* fwd[] = {p.q, p.k, p.v, p.out};
  for (const void* ptr : fwd) {
    if (!aligned16(ptr)) return false;
  }
  if (op == Op::kBackward) {
    const void* bwd[] = {p.dout, p.dq, p.dk, p.dv};
    for (const void* ptr : bwd) {
      if (!aligned16(ptr)) return false;
    }
  }
  return true;
}

}  // namespace

Force forced_path(std::string* bad) {
  static const std::string value = [] {
    const char* v = std::getenv("FLASHATTN_KERNEL_PATH");
    return std::string(v ? v : "");
  }();
  Force f = Force::kAuto;
  if (!parse_force(value, &f)) {
    if (bad) *bad = "FLASHATTN_KERNEL_PATH must be 'sm80' or 'sm90' (or unset), but is '" + value + "'";
    return Force::kAuto;
  }
  return f;
}

Plan plan_cached(Op op, const AttnParams& p, const DeviceFacts& dev, const std::vector<ArchTarget>& compiled) {
  std::string bad;
  const Force force = forced_path(&bad);
  if (!bad.empty()) {
    Plan none;
    none.reason = bad;
    return none;
  }
  static std::mutex mu;
  static auto* table = new std::unordered_map<PlanKey, Plan, KeyHash>();  // never destroyed
  const PlanKey key = plan_key(op, p, dev.index);
  Plan plan;
  bool found = false;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = table->find(key);
    if (it != table->end()) {
      plan = it->second;
      found = true;
    }
  }
  if (!found) {
    plan = make_plan(op, p, dev, compiled, force);
    if (plan.ok()) {
      std::lock_guard<std::mutex> lock(mu);
      if (table->size() >= kMaxEntries) table->clear();
      table->emplace(key, plan);
    }
  }
  // The sm90 rule also reads strides and pointers the key does not hold: ask it every time.
  if (plan.path == KernelPath::kSm90 && !sm90_forward_covers(p, nullptr)) plan = make_plan(op, p, dev, compiled, force);
  if (plan.ok() && !pointers_aligned(op, p)) {
    Plan none;
    none.reason = "the CUDA kernels need 16-byte aligned tensors (a view's element offset must be a multiple of " +
                  std::to_string(16 / (dtype_size(p.dtype) > 0 ? dtype_size(p.dtype) : 1)) + " for " +
                  dtype_name(p.dtype) + ")";
    return none;
  }
  return plan;
}

}  // namespace flashattn::plan
