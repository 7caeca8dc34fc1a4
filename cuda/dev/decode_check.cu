// decode_check.cu — stand-alone harness for the split-KV decode kernels (cuda/decode/).
//
//   decode_check [--check] [--bench] [--bars] [--errors]    (check and bench when none is given)
//
// --errors the checker's self-test (naive output passes, perturbed/NaN/non-empty fails) and input
//          validation (decode_forward must throw flashattn::cuda::Error); needs no GPU. --check
//          runs both too.
// --check  every case against a float64 CPU reference written here (not params.h's key_range):
//          random non-zero inputs, fresh seed per run (printed), outputs poisoned with NaN.
//          Pass: max|out - ref| <= 2 x max|naive-in-dtype - ref| + 1e-5 (naive: P rounded to the
//          dtype before P·V, O rounded), no NaN, rows that see no key exactly 0 with LSE -inf,
//          |lse - ref| <= 1e-3, and the whole cache buffer after the call equal to the expected
//          image (new keys appended, nothing else touched). Paged and cache_batch_idx layouts of
//          the same logical case must give bit-identical outputs to the contiguous one.
//          Then a 1,000-step decode loop (append one token per row, attend), checked every 50 steps
//          and at the end, cache included.
// --bench  CUDA-event time (median of 15 after 3 warm-ups, queued behind a spin kernel so host
//          launch gaps do not count) for batch 1/16/64 x context 1k…128k, h 32 / h_k 8, d128 bf16,
//          contiguous and paged 16 / 256, in TB/s of K/V read (2·b·ctx·h_k·d·2 bytes). Small shapes
//          rotate over copies spread through >= 512 MB so L2 does not hold them. The bars of
//          issue 10 are printed last. The workspace is zeroed once and reused
//          (decode_forward_reusing, as the addon's bench and a server's per-stream workspace do).
// --bars   the bench on the bar shapes only (b1 x 8k, b1 x 128k, b16 x 8k contiguous and paged 16,
//          b64 x 4k) and the b1 split sweep: for A/B runs of several builds or settings.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <cuda_runtime.h>

#include "decode/api.h"
#include "dev/harness.h"

using flashattn::DType;
using flashattn::Strides;
using flashattn::decode::DecodeParams;
using flashattn::dev::from_bits;
using flashattn::dev::round_to;

#define CK(call)                                                                                     \
  do {                                                                                               \
    cudaError_t e_ = (call);                                                                         \
    if (e_ != cudaSuccess)                                                                           \
      throw std::runtime_error(std::string(#call) + ": " + cudaGetErrorName(e_) + " line " +         \
                               std::to_string(__LINE__));                                           \
  } while (0)

namespace {

// ---- small utilities -----------------------------------------------------------------------------
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  int below(int n) { return static_cast<int>(next() % static_cast<uint64_t>(n)); }
};

// Random non-zero 16-bit values straight as bits: ±[0.125, 1) with 7 (bf16) or 10 (fp16) random
// mantissa bits, four values per draw (the harness fills tens of millions per case).
void fill(std::vector<uint16_t>& v, size_t n, DType dt, Rng& rng) {
  v.resize(n);
  const bool bf = dt == DType::kBFloat16;
  for (size_t i = 0; i < n; i += 4) {
    uint64_t x = rng.next();
    for (size_t k = i; k < std::min(n, i + 4); ++k, x >>= 16) {
      const uint32_t sign = x & 1u, e = 1u + static_cast<uint32_t>((x >> 1) % 3u);  // exponent offset 1..3
      const uint32_t m = static_cast<uint32_t>(x >> 3);
      v[k] = bf ? static_cast<uint16_t>((sign << 15) | ((127u - e) << 7) | (m & 0x7fu))
                : static_cast<uint16_t>((sign << 15) | ((15u - e) << 10) | (m & 0x3ffu));
    }
  }
}

// 16-bit bits -> value, by table (exact; from_bits once per bit pattern).
struct ValueTable {
  std::vector<float> bf, fp;
  ValueTable() : bf(65536), fp(65536) {
    for (uint32_t b = 0; b < 65536; ++b) {
      bf[b] = static_cast<float>(from_bits(static_cast<uint16_t>(b), DType::kBFloat16));
      fp[b] = static_cast<float>(from_bits(static_cast<uint16_t>(b), DType::kFloat16));
    }
  }
};
const ValueTable& values() {
  static const ValueTable t;
  return t;
}
inline double val(uint16_t bits, DType dt) { return dt == DType::kBFloat16 ? values().bf[bits] : values().fp[bits]; }

template <typename T>
struct DevBuf {
  T* p = nullptr;
  size_t n = 0;
  DevBuf() = default;
  explicit DevBuf(size_t count) { alloc(count); }
  void alloc(size_t count) {
    if (p) throw std::runtime_error("DevBuf allocated twice");
    n = count;
    if (count) CK(cudaMalloc(&p, count * sizeof(T)));
  }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  ~DevBuf() {
    if (p) cudaFree(p);
  }
  void upload(const std::vector<T>& h) {
    if (h.size() != n) throw std::runtime_error("upload size");
    if (n) CK(cudaMemcpy(p, h.data(), n * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> download() const {
    std::vector<T> h(n);
    if (n) CK(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }
};

int sm_count() {
  int dev = 0, sms = 0;
  CK(cudaGetDevice(&dev));
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  return sms;
}

Strides bshd(int s, int heads, int d) {
  Strides st;
  st.head = d;
  st.row = static_cast<int64_t>(heads) * d;
  st.batch = static_cast<int64_t>(s) * heads * d;
  return st;
}

// ---- a correctness case --------------------------------------------------------------------------
enum class Layout { kContiguous, kBatchIdx, kPaged };

struct Case {
  std::string name;
  int d = 128;
  DType dt = DType::kBFloat16;
  int b = 4, s_q = 1, h = 32, h_k = 8;
  std::vector<int> cached;  // (b) tokens in the cache before the call
  int s_new = 0;
  int cap = 2304;  // capacity per row (a multiple of every page size used)
  Layout layout = Layout::kContiguous;
  int page = 0;
  int wl = -1, wr = -1;
  int splits = 0;  // 0: heuristic
  float scale = 0;
};

// What the logical (b, cap, h_k, d) cache, q and the new keys hold, independent of layout.
struct Logical {
  std::vector<uint16_t> q, k, v, knew, vnew;
};

Logical make_logical(const Case& c, Rng& rng) {
  Logical L;
  fill(L.q, static_cast<size_t>(c.b) * c.s_q * c.h * c.d, c.dt, rng);
  fill(L.k, static_cast<size_t>(c.b) * c.cap * c.h_k * c.d, c.dt, rng);
  fill(L.v, L.k.size(), c.dt, rng);
  fill(L.knew, static_cast<size_t>(c.b) * c.s_new * c.h_k * c.d, c.dt, rng);
  fill(L.vnew, L.knew.size(), c.dt, rng);
  return L;
}

// The logical cache after the append (expected contents).
void append_host(const Case& c, std::vector<uint16_t>& cache, const std::vector<uint16_t>& add) {
  const size_t row = static_cast<size_t>(c.h_k) * c.d;
  for (int b = 0; b < c.b; ++b)
    for (int t = 0; t < c.s_new; ++t)
      std::memcpy(&cache[(static_cast<size_t>(b) * c.cap + c.cached[b] + t) * row],
                  &add[(static_cast<size_t>(b) * c.s_new + t) * row], row * 2);
}

// A device layout of a logical cache: where logical row (b, j) lives. Unused rows / blocks are
// random "garbage" that must stay untouched and unread.
struct Placement {
  int slots = 0;                   // cache rows (contiguous) or physical blocks (paged)
  int slot_len = 0;                // keys per slot
  std::vector<int32_t> batch_idx;  // contiguous with cache_batch_idx
  std::vector<int32_t> table;      // paged: (b, bt_stride)
  int bt_stride = 0, bps = 0;
  size_t slot_of(int b, int j, int* within) const {
    if (!table.empty()) {
      *within = j % slot_len;
      return static_cast<size_t>(table[static_cast<size_t>(b) * bt_stride + j / slot_len]);
    }
    *within = j;
    return batch_idx.empty() ? static_cast<size_t>(b) : static_cast<size_t>(batch_idx[b]);
  }
};

Placement make_placement(const Case& c, Rng& rng) {
  Placement pl;
  if (c.layout == Layout::kPaged) {
    pl.slot_len = c.page;
    pl.bps = c.cap / c.page;
    pl.bt_stride = pl.bps + 3;
    pl.slots = c.b * pl.bps + 5;
    std::vector<int32_t> perm(pl.slots);
    for (int i = 0; i < pl.slots; ++i) perm[i] = i;
    for (int i = pl.slots - 1; i > 0; --i) std::swap(perm[i], perm[rng.below(i + 1)]);
    pl.table.assign(static_cast<size_t>(c.b) * pl.bt_stride, -7);  // padding never read
    for (int b = 0; b < c.b; ++b)
      for (int pg = 0; pg < pl.bps; ++pg) pl.table[static_cast<size_t>(b) * pl.bt_stride + pg] = perm[b * pl.bps + pg];
  } else {
    pl.slot_len = c.cap;
    pl.slots = c.b + (c.layout == Layout::kBatchIdx ? 3 : 0);
    if (c.layout == Layout::kBatchIdx) {
      std::vector<int32_t> perm(pl.slots);
      for (int i = 0; i < pl.slots; ++i) perm[i] = i;
      for (int i = pl.slots - 1; i > 0; --i) std::swap(perm[i], perm[rng.below(i + 1)]);
      pl.batch_idx.assign(perm.begin(), perm.begin() + c.b);
    }
  }
  return pl;
}

// Random contents of a whole device cache buffer (what unused rows and blocks hold).
std::vector<uint16_t> garbage(const Case& c, const Placement& pl, Rng& rng) {
  std::vector<uint16_t> g;
  fill(g, static_cast<size_t>(pl.slots) * pl.slot_len * c.h_k * c.d, c.dt, rng);
  return g;
}

std::vector<uint16_t> image(const Case& c, const Placement& pl, const std::vector<uint16_t>& logical,
                            const std::vector<uint16_t>& garbage) {
  std::vector<uint16_t> img = garbage;
  const size_t row = static_cast<size_t>(c.h_k) * c.d;
  for (int b = 0; b < c.b; ++b)
    for (int j = 0; j < c.cap; ++j) {
      int within = 0;
      const size_t slot = pl.slot_of(b, j, &within);
      std::memcpy(&img[(slot * pl.slot_len + within) * row], &logical[(static_cast<size_t>(b) * c.cap + j) * row],
                  row * 2);
    }
  return img;
}

// ---- float64 reference ------------------------------------------------------------------------
struct Ref {
  std::vector<double> o, naive;  // (b, s_q, h, d)
  std::vector<double> lse;       // (b, h, s_q)
  std::vector<char> empty;       // (b, h, s_q)
};

// Query token i of row b sees key j iff 0 <= j < sk and, with diag = i + sk - s_q,
// j >= diag - left (left >= 0) and j <= diag + right (right >= 0).
bool visible(int i, int j, int s_q, int sk, int wl, int wr) {
  if (j < 0 || j >= sk) return false;
  const long long diag = static_cast<long long>(i) + sk - s_q;
  if (wl >= 0 && j < diag - wl) return false;
  if (wr >= 0 && j > diag + wr) return false;
  return true;
}

// `kc`/`vc` are the logical caches after the append; row b attends to sk[b] keys.
Ref reference(const Case& c, const std::vector<uint16_t>& q, const std::vector<uint16_t>& kc,
              const std::vector<uint16_t>& vc, const std::vector<int>& sk, float scale) {
  Ref R;
  const size_t nrows = static_cast<size_t>(c.b) * c.h * c.s_q;
  R.o.assign(nrows * c.d, 0.0);
  R.naive.assign(nrows * c.d, 0.0);
  R.lse.assign(nrows, -INFINITY);
  R.empty.assign(nrows, 1);
  const int group = c.h / c.h_k;
  std::atomic<size_t> next{0};
  auto work = [&]() {
    std::vector<double> s(c.cap), qd(c.d), acc(c.d), accn(c.d);
    for (;;) {
      const size_t r = next.fetch_add(1);
      if (r >= nrows) break;
      const int i = static_cast<int>(r % c.s_q);
      const int hq = static_cast<int>((r / c.s_q) % c.h);
      const int b = static_cast<int>(r / (static_cast<size_t>(c.s_q) * c.h));
      const int hk = hq / group;
      const size_t qo = ((static_cast<size_t>(b) * c.s_q + i) * c.h + hq) * c.d;
      for (int x = 0; x < c.d; ++x) qd[x] = val(q[qo + x], c.dt);
      double mx = -INFINITY;
      int n = 0;
      for (int j = 0; j < sk[b]; ++j) {
        if (!visible(i, j, c.s_q, sk[b], c.wl, c.wr)) {
          s[j] = -INFINITY;
          continue;
        }
        const size_t ko = ((static_cast<size_t>(b) * c.cap + j) * c.h_k + hk) * c.d;
        double dot = 0;
        for (int x = 0; x < c.d; ++x) dot += qd[x] * val(kc[ko + x], c.dt);
        s[j] = dot * scale;
        mx = std::max(mx, s[j]);
        ++n;
      }
      const size_t lo = (static_cast<size_t>(b) * c.h + hq) * c.s_q + i;
      if (n == 0) continue;
      double sum = 0;
      for (int j = 0; j < sk[b]; ++j)
        if (s[j] != -INFINITY) sum += std::exp(s[j] - mx);
      R.lse[lo] = mx + std::log(sum);
      R.empty[lo] = 0;
      std::fill(acc.begin(), acc.end(), 0.0);
      std::fill(accn.begin(), accn.end(), 0.0);
      for (int j = 0; j < sk[b]; ++j) {
        if (s[j] == -INFINITY) continue;
        const double pj = std::exp(s[j] - mx) / sum;
        const double pn = round_to(pj, c.dt);
        const size_t vo = ((static_cast<size_t>(b) * c.cap + j) * c.h_k + hk) * c.d;
        for (int x = 0; x < c.d; ++x) {
          const double vv = val(vc[vo + x], c.dt);
          acc[x] += pj * vv;
          accn[x] += pn * vv;
        }
      }
      for (int x = 0; x < c.d; ++x) {
        R.o[qo + x] = acc[x];
        R.naive[qo + x] = round_to(accn[x], c.dt);
      }
    }
  };
  const unsigned nt = std::max(1u, std::min(16u, std::thread::hardware_concurrency()));
  std::vector<std::thread> th;
  for (unsigned t = 0; t < nt; ++t) th.emplace_back(work);
  for (auto& t : th) t.join();
  return R;
}

struct Score {
  double err = 0, bound = 0, lse_err = 0;
  long nan = 0, bad_empty = 0;
  bool pass() const { return nan == 0 && bad_empty == 0 && err <= 2 * bound + 1e-5 && lse_err <= 1e-3; }
};

// Compares out/lse of rows [row0, row0 + rows) of (b, s_q, h) against R.
Score score(const Case& c, const Ref& R, const std::vector<uint16_t>& out, const std::vector<float>& lse) {
  Score sc;
  for (int b = 0; b < c.b; ++b)
    for (int i = 0; i < c.s_q; ++i)
      for (int hq = 0; hq < c.h; ++hq) {
        const size_t oo = ((static_cast<size_t>(b) * c.s_q + i) * c.h + hq) * c.d;
        const size_t lo = (static_cast<size_t>(b) * c.h + hq) * c.s_q + i;
        const float l = lse[lo];
        if (R.empty[lo]) {
          if (!(std::isinf(l) && l < 0)) ++sc.bad_empty;
          for (int x = 0; x < c.d; ++x)
            if (val(out[oo + x], c.dt) != 0.0) ++sc.bad_empty;
          continue;
        }
        if (std::isnan(l)) ++sc.nan;
        else sc.lse_err = std::max(sc.lse_err, std::fabs(l - R.lse[lo]));
        for (int x = 0; x < c.d; ++x) {
          const double v = val(out[oo + x], c.dt);
          if (std::isnan(v)) {
            ++sc.nan;
            continue;
          }
          sc.err = std::max(sc.err, std::fabs(v - R.o[oo + x]));
          sc.bound = std::max(sc.bound, std::fabs(R.naive[oo + x] - R.o[oo + x]));
        }
      }
  if (std::isinf(sc.lse_err)) sc.lse_err = 1e30;
  return sc;
}

// Device buffers of one case in one layout.
struct DeviceCase {
  DevBuf<uint16_t> q, k, v, knew, vnew, out;
  DevBuf<float> lse;
  DevBuf<int32_t> seqlens, bidx, table;
  DevBuf<unsigned char> ws;
  DecodeParams p;
};

// Sizes, semantics and the splits of a case; pointers and strides are the caller's.
DecodeParams sized_params(const Case& c) {
  DecodeParams p;
  p.b = c.b;
  p.s_q = c.s_q;
  p.h = c.h;
  p.h_k = c.h_k;
  p.d = c.d;
  p.s_new = c.s_new;
  p.dtype = c.dt;
  p.scale = c.scale;
  p.window_left = c.wl;
  p.window_right = c.wr;
  p.num_splits = c.splits;
  return p;
}

void setup(const Case& c, const Logical& L, const Placement& pl, const std::vector<uint16_t>& kimg,
           const std::vector<uint16_t>& vimg, DeviceCase& dc) {
  DecodeParams& p = dc.p;
  p = sized_params(c);
  dc.q.alloc(L.q.size());
  dc.q.upload(L.q);
  dc.k.alloc(kimg.size());
  dc.k.upload(kimg);
  dc.v.alloc(vimg.size());
  dc.v.upload(vimg);
  dc.out.alloc(L.q.size());
  CK(cudaMemset(dc.out.p, 0xff, dc.out.n * 2));  // NaN in fp16 and bf16
  dc.lse.alloc(static_cast<size_t>(c.b) * c.h * c.s_q);
  CK(cudaMemset(dc.lse.p, 0xff, dc.lse.n * 4));  // NaN
  std::vector<int32_t> cs(c.cached.begin(), c.cached.end());
  dc.seqlens.alloc(cs.size());
  dc.seqlens.upload(cs);
  p.q = dc.q.p;
  p.k_cache = dc.k.p;
  p.v_cache = dc.v.p;
  p.out = dc.out.p;
  p.lse = dc.lse.p;
  p.cache_seqlens = dc.seqlens.p;
  p.q_stride = p.o_stride = bshd(c.s_q, c.h, c.d);
  if (c.s_new > 0) {
    dc.knew.alloc(L.knew.size());
    dc.knew.upload(L.knew);
    dc.vnew.alloc(L.vnew.size());
    dc.vnew.upload(L.vnew);
    p.k_new = dc.knew.p;
    p.v_new = dc.vnew.p;
    p.knew_stride = p.vnew_stride = bshd(c.s_new, c.h_k, c.d);
  }
  p.k_stride = p.v_stride = bshd(pl.slot_len, c.h_k, c.d);
  if (c.layout == Layout::kPaged) {
    dc.table.alloc(pl.table.size());
    dc.table.upload(pl.table);
    p.block_table = dc.table.p;
    p.block_table_batch_stride = pl.bt_stride;
    p.page_size = c.page;
    p.num_blocks = pl.slots;
    p.max_blocks_per_seq = pl.bps;
  } else {
    p.max_seqlen = c.cap;
    p.batch_cache = pl.slots;
    if (c.layout == Layout::kBatchIdx) {
      dc.bidx.alloc(pl.batch_idx.size());
      dc.bidx.upload(pl.batch_idx);
      p.cache_batch_idx = dc.bidx.p;
    }
  }
  const size_t wsb = flashattn::decode::decode_workspace_bytes(p, sm_count());
  new (&dc.ws) DevBuf<unsigned char>(wsb);
  // Garbage in the workspace (its split counters included): decode_forward must not rely on zeros.
  if (wsb > 0) CK(cudaMemset(dc.ws.p, 0xff, wsb));
  p.workspace_bytes = wsb;
}

const char* layout_name(const Case& c) {
  static thread_local char buf[32];
  if (c.layout == Layout::kPaged) {
    std::snprintf(buf, sizeof buf, "paged%d", c.page);
    return buf;
  }
  return c.layout == Layout::kBatchIdx ? "bidx" : "contig";
}

std::string mask_name(const Case& c) {
  if (c.wl < 0 && c.wr < 0) return "none";
  if (c.wl < 0 && c.wr == 0) return "causal";
  return "win[" + std::to_string(c.wl) + "," + std::to_string(c.wr) + "]";
}

struct CaseResult {
  bool pass = false;
  std::vector<uint16_t> out;
};

// Runs one case; `same_as` (when non-null) is the output another layout gave for the same inputs.
CaseResult run_case(const Case& c0, const Logical& L, uint64_t seed, const std::vector<uint16_t>* same_as) {
  Case c = c0;
  if (c.scale == 0) c.scale = 1.3f / std::sqrt(static_cast<float>(c.d));
  Rng rng(seed ^ 0x5bd1e995);
  const Placement pl = make_placement(c, rng);
  const std::vector<uint16_t> gk = garbage(c, pl, rng), gv = garbage(c, pl, rng);
  std::vector<uint16_t> kexp = L.k, vexp = L.v;
  append_host(c, kexp, L.knew);
  append_host(c, vexp, L.vnew);
  DeviceCase dc;
  setup(c, L, pl, image(c, pl, L.k, gk), image(c, pl, L.v, gv), dc);
  const int splits = flashattn::decode::decode_num_splits(dc.p, sm_count());
  flashattn::decode::decode_forward(dc.p, dc.ws.p, nullptr);
  CK(cudaDeviceSynchronize());
  CaseResult res;
  res.out = dc.out.download();
  const std::vector<float> lse = dc.lse.download();
  const bool cache_ok = dc.k.download() == image(c, pl, kexp, gk) && dc.v.download() == image(c, pl, vexp, gv);
  std::vector<int> sk(c.b);
  for (int b = 0; b < c.b; ++b) sk[b] = c.cached[b] + c.s_new;
  const Ref R = reference(c, L.q, kexp, vexp, sk, c.scale);
  const Score sc = score(c, R, res.out, lse);
  const bool same = same_as == nullptr || *same_as == res.out;
  res.pass = sc.pass() && cache_ok && same;
  std::printf("%-5s %-26s d%-3d %-4s b%-2d sq%-2d %2d/%-2d new%-2d %-7s %-12s spl %3d  err %.2e bound %.2e lse %.1e%s%s%s  %s\n",
              res.pass ? "ok" : "FAIL", c.name.c_str(), c.d, c.dt == DType::kBFloat16 ? "bf16" : "fp16", c.b, c.s_q,
              c.h, c.h_k, c.s_new, layout_name(c), mask_name(c).c_str(), splits, sc.err, 2 * sc.bound + 1e-5,
              sc.lse_err, cache_ok ? "" : " CACHE-WRONG", same ? "" : " DIFFERS-FROM-CONTIG",
              sc.nan ? (" NaN:" + std::to_string(sc.nan)).c_str() : "", sc.bad_empty ? "EMPTY-ROWS-WRONG" : "");
  return res;
}

// ---- the 1,000-step decode loop ------------------------------------------------------------------
bool decode_loop(uint64_t seed) {
  Case c;
  c.name = "loop";
  c.b = 4;
  c.h = 32;
  c.h_k = 8;
  c.cap = 2048;
  c.layout = Layout::kPaged;
  c.page = 16;
  c.wr = 0;  // causal (with s_q 1 every cached key is visible)
  c.scale = 1.3f / std::sqrt(128.f);
  const int steps = 1000;
  const std::vector<int> start = {0, 7, 300, 1024};
  Rng rng(seed ^ 0x1000);
  Logical L;
  fill(L.k, static_cast<size_t>(c.b) * c.cap * c.h_k * c.d, c.dt, rng);
  fill(L.v, L.k.size(), c.dt, rng);
  std::vector<uint16_t> q_all, kn_all, vn_all;
  const size_t qn = static_cast<size_t>(c.b) * c.h * c.d, kn = static_cast<size_t>(c.b) * c.h_k * c.d;
  fill(q_all, qn * steps, c.dt, rng);
  fill(kn_all, kn * steps, c.dt, rng);
  fill(vn_all, kn * steps, c.dt, rng);
  const Placement pl = make_placement(c, rng);
  const std::vector<uint16_t> gk = garbage(c, pl, rng), gv = garbage(c, pl, rng);
  // Expected final logical cache.
  std::vector<uint16_t> kexp = L.k, vexp = L.v;
  const size_t row = static_cast<size_t>(c.h_k) * c.d;
  for (int t = 0; t < steps; ++t)
    for (int b = 0; b < c.b; ++b) {
      std::memcpy(&kexp[(static_cast<size_t>(b) * c.cap + start[b] + t) * row], &kn_all[t * kn + b * row], row * 2);
      std::memcpy(&vexp[(static_cast<size_t>(b) * c.cap + start[b] + t) * row], &vn_all[t * kn + b * row], row * 2);
    }
  DevBuf<uint16_t> k(gk.size()), v(gv.size()), q(q_all.size()), knd(kn_all.size()), vnd(vn_all.size()), out(q_all.size());
  k.upload(image(c, pl, L.k, gk));
  v.upload(image(c, pl, L.v, gv));
  q.upload(q_all);
  knd.upload(kn_all);
  vnd.upload(vn_all);
  CK(cudaMemset(out.p, 0xff, out.n * 2));
  DevBuf<float> lse(static_cast<size_t>(steps) * c.b * c.h);
  CK(cudaMemset(lse.p, 0xff, lse.n * 4));
  std::vector<int32_t> lens(static_cast<size_t>(steps) * c.b);
  for (int t = 0; t < steps; ++t)
    for (int b = 0; b < c.b; ++b) lens[t * c.b + b] = start[b] + t;
  DevBuf<int32_t> lens_d(lens.size()), table(pl.table.size());
  lens_d.upload(lens);
  table.upload(pl.table);
  c.s_q = 1;
  c.s_new = 1;
  DecodeParams p = sized_params(c);
  p.q_stride = p.o_stride = bshd(1, c.h, c.d);
  p.knew_stride = p.vnew_stride = bshd(1, c.h_k, c.d);
  p.k_stride = p.v_stride = bshd(c.page, c.h_k, c.d);
  p.block_table = table.p;
  p.block_table_batch_stride = pl.bt_stride;
  p.page_size = c.page;
  p.num_blocks = pl.slots;
  p.max_blocks_per_seq = pl.bps;
  const int sms = sm_count();
  p.num_splits = flashattn::decode::decode_num_splits(p, sms);
  DevBuf<unsigned char> ws(flashattn::decode::decode_workspace_bytes(p, sms));
  p.workspace_bytes = ws.n;
  // One workspace zeroed once and reused by every step, as a server does: the fused combine's
  // counters must come back to zero after each call (decode_forward_reusing skips the memset).
  if (ws.n > 0) CK(cudaMemset(ws.p, 0, ws.n));
  for (int t = 0; t < steps; ++t) {
    p.q = q.p + t * qn;
    p.out = out.p + t * qn;
    p.lse = lse.p + static_cast<size_t>(t) * c.b * c.h;
    p.k_new = knd.p + t * kn;
    p.v_new = vnd.p + t * kn;
    p.k_cache = k.p;
    p.v_cache = v.p;
    p.cache_seqlens = lens_d.p + t * c.b;
    flashattn::decode::decode_forward_reusing(p, ws.p, nullptr);
  }
  CK(cudaDeviceSynchronize());
  const std::vector<uint16_t> out_h = out.download();
  const std::vector<float> lse_h = lse.download();
  const bool cache_ok = k.download() == image(c, pl, kexp, gk) && v.download() == image(c, pl, vexp, gv);
  bool ok = cache_ok;
  double worst = 0, worst_bound = 0;
  Case cs = c;
  cs.s_q = 1;
  for (int t = 0; t < steps; ++t) {
    if (!(t % 50 == 0 || t == steps - 1 || t == 1)) continue;
    std::vector<int> sk(c.b);
    for (int b = 0; b < c.b; ++b) sk[b] = start[b] + t + 1;
    const std::vector<uint16_t> qt(q_all.begin() + t * qn, q_all.begin() + (t + 1) * qn);
    const Ref R = reference(cs, qt, kexp, vexp, sk, c.scale);
    const std::vector<uint16_t> ot(out_h.begin() + t * qn, out_h.begin() + (t + 1) * qn);
    const std::vector<float> lt(lse_h.begin() + static_cast<size_t>(t) * c.b * c.h,
                                lse_h.begin() + static_cast<size_t>(t + 1) * c.b * c.h);
    const Score sc = score(cs, R, ot, lt);
    worst = std::max(worst, sc.err);
    worst_bound = std::max(worst_bound, 2 * sc.bound + 1e-5);
    if (!sc.pass()) {
      ok = false;
      std::printf("      loop step %d: err %.2e bound %.2e lse %.1e nan %ld empty %ld\n", t, sc.err, 2 * sc.bound + 1e-5,
                  sc.lse_err, sc.nan, sc.bad_empty);
    }
  }
  std::printf("%-5s %-26s d128 bf16 b4  paged16 h32/8, %d steps of append 1 + attend (lengths 0/7/300/1024 -> +%d), "
              "splits %d: worst err %.2e (bound %.2e) over 22 checked steps, final cache %s\n",
              ok ? "ok" : "FAIL", "decode loop", steps, steps, p.num_splits, worst, worst_bound,
              cache_ok ? "equal" : "WRONG");
  return ok;
}

int run_checks(uint64_t seed) {
  std::printf("== correctness (seed %llu)\n   pass: err <= bound = 2 x naive-in-dtype err + 1e-5, no NaN, empty rows "
              "exact, |lse err| <= 1e-3, cache image exact, layouts bit-identical\n",
              static_cast<unsigned long long>(seed));
  int fails = 0, total = 0;
  auto account = [&](bool ok) {
    ++total;
    fails += ok ? 0 : 1;
  };
  uint64_t sub = seed;
  auto logical_for = [&](const Case& c) {
    Rng rng(++sub);
    return make_logical(c, rng);
  };
  // A. split counts, ragged lengths including 0 and 1.
  {
    Case c;
    c.name = "splits";
    c.cached = {0, 1, 777, 2300};
    c.s_new = 0;
    const Logical L = logical_for(c);
    for (int s : {1, 2, 3, 5, 8, 16, 37, 64, 128, 256, 0}) {
      c.splits = s;
      account(run_case(c, L, sub, nullptr).pass);
    }
  }
  // B. layouts of one logical case (append 1 token): paged 16 / 48 / 256 and cache_batch_idx
  // must match the contiguous result bit for bit, at one split and at several.
  for (int s : {1, 6}) {
    Case c;
    c.name = "layouts";
    c.cached = {5, 0, 1500, 2303 - 1};
    c.s_new = 1;
    c.wr = 0;
    c.splits = s;
    const Logical L = logical_for(c);
    const CaseResult base = run_case(c, L, sub, nullptr);
    account(base.pass);
    for (int pg : {16, 48, 256}) {
      Case cp = c;
      cp.layout = Layout::kPaged;
      cp.page = pg;
      account(run_case(cp, L, sub, &base.out).pass);
    }
    Case cb = c;
    cb.layout = Layout::kBatchIdx;
    account(run_case(cb, L, sub, &base.out).pass);
  }
  // C. query tokens x head grouping x mask, with s_new = s_q (speculative decoding appends its
  // drafted tokens), lengths so that some rows see nothing under causal.
  {
    const int heads[3][2] = {{32, 8}, {16, 1}, {8, 8}};
    const int masks[3][2] = {{-1, -1}, {-1, 0}, {100, 3}};
    int n = 0;
    for (int sq : {1, 4, 16})
      for (auto& hh : heads)
        for (auto& mk : masks) {
          Case c;
          c.name = "sq/gqa/mask";
          c.b = 3;
          c.s_q = sq;
          c.h = hh[0];
          c.h_k = hh[1];
          c.s_new = sq == 16 ? 1 : sq;  // s_q 16 with a single new key: causal rows i < 15 see nothing
          c.cached = {0, 129, 2000};
          c.wl = mk[0];
          c.wr = mk[1];
          c.splits = (n % 3 == 0) ? 1 : (n % 3 == 1 ? 5 : 0);
          c.layout = (n % 2 == 0) ? Layout::kContiguous : Layout::kPaged;
          c.page = (n % 4 == 1) ? 16 : 256;
          ++n;
          const Logical L = logical_for(c);
          account(run_case(c, L, sub, nullptr).pass);
        }
  }
  // D. other head dims and fp16.
  {
    struct V {
      int d;
      DType dt;
      int sq, h, hk, wl, wr, splits, page, s_new;
    };
    const V vs[] = {{64, DType::kBFloat16, 4, 32, 8, -1, 0, 3, 16, 4},
                    {64, DType::kFloat16, 1, 8, 1, -1, -1, 0, 0, 1},
                    {256, DType::kFloat16, 1, 32, 8, 300, 0, 7, 0, 1},
                    {256, DType::kBFloat16, 16, 16, 2, -1, 0, 2, 256, 16},
                    {128, DType::kFloat16, 16, 32, 1, -1, 0, 0, 256, 16},
                    {128, DType::kFloat16, 2, 64, 8, 50, 50, 4, 16, 2}};
    for (const V& x : vs) {
      Case c;
      c.name = "dims/dtypes";
      c.d = x.d;
      c.dt = x.dt;
      c.b = 3;
      c.s_q = x.sq;
      c.h = x.h;
      c.h_k = x.hk;
      c.wl = x.wl;
      c.wr = x.wr;
      c.splits = x.splits;
      c.layout = x.page ? Layout::kPaged : Layout::kContiguous;
      c.page = x.page;
      c.s_new = x.s_new;
      c.cached = {1, 1000, 2304 - 16};
      const Logical L = logical_for(c);
      account(run_case(c, L, sub, nullptr).pass);
    }
  }
  // E. every row empty (no cached keys, nothing appended) and a single key each.
  for (int len : {0, 1}) {
    Case c;
    c.name = len ? "one key each" : "all rows empty";
    c.cached = {len, len, len, len};
    c.splits = 4;
    const Logical L = logical_for(c);
    account(run_case(c, L, sub, nullptr).pass);
  }
  account(decode_loop(++sub));
  std::printf("correctness: %d of %d passed\n", total - fails, total);
  return fails;
}

// ---- the checker itself, on the CPU: the naive result passes; a perturbed, NaN or wrongly
// non-empty result fails. Needs no GPU (run with --errors too).
int run_checker_selftest() {
  Case c;
  c.b = 2;
  c.s_q = 4;
  c.h = 8;
  c.h_k = 2;
  c.cap = 256;
  c.cached = {0, 200};
  c.s_new = 0;
  c.wr = 0;  // causal: row 0 (no keys) is all empty
  c.scale = 0.1f;
  Rng rng(7);
  const Logical L = make_logical(c, rng);
  const Ref R = reference(c, L.q, L.k, L.v, {0, 200}, c.scale);
  std::vector<uint16_t> out(R.naive.size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = flashattn::dev::to_bits(static_cast<float>(R.naive[i]), c.dt);
  std::vector<float> lse(R.lse.begin(), R.lse.end());
  int fails = 0;
  auto expect = [&](const char* what, bool want_pass, const std::vector<uint16_t>& o, const std::vector<float>& l) {
    const bool got = score(c, R, o, l).pass();
    fails += got == want_pass ? 0 : 1;
    std::printf("%-5s checker: %-40s %s\n", got == want_pass ? "ok" : "FAIL", what, got ? "passes" : "fails");
  };
  expect("naive-in-dtype output", true, out, lse);
  const size_t live = ((static_cast<size_t>(1) * c.s_q + 2) * c.h + 3) * c.d + 5;  // b 1, i 2, h 3, x 5
  std::vector<uint16_t> o2 = out;
  o2[live] = flashattn::dev::to_bits(static_cast<float>(R.o[live] + 0.05), c.dt);
  expect("one element off by 0.05", false, o2, lse);
  o2 = out;
  o2[live] = 0x7fc0;  // NaN in bf16
  expect("one NaN", false, o2, lse);
  o2 = out;
  o2[3] = flashattn::dev::to_bits(0.5f, c.dt);  // b 0 sees no key at all
  expect("non-zero output of an empty row", false, o2, lse);
  std::vector<float> l2 = lse;
  l2[0] = 0.f;
  expect("finite LSE of an empty row", false, out, l2);
  l2 = lse;
  l2[static_cast<size_t>(1) * c.h * c.s_q + 1] += 0.01f;
  expect("LSE off by 0.01", false, out, l2);
  return fails;
}

// ---- input errors: decode_forward throws flashattn::cuda::Error before touching the GPU ---------
int run_error_checks() {
  std::printf("== input errors (each must throw flashattn::cuda::Error naming the problem)\n");
  auto base = [] {
    DecodeParams p;
    p.b = 2;
    p.s_q = 1;
    p.h = 32;
    p.h_k = 8;
    p.d = 128;
    p.dtype = DType::kBFloat16;
    p.scale = 0.1f;
    p.num_splits = 1;  // no device query
    auto fake = [](uintptr_t a) { return reinterpret_cast<void*>(a); };
    p.q = fake(0x10000);
    p.k_cache = fake(0x20000);
    p.v_cache = fake(0x30000);
    p.out = fake(0x40000);
    p.cache_seqlens = static_cast<const int32_t*>(fake(0x50000));
    p.q_stride = p.o_stride = bshd(1, 32, 128);
    p.k_stride = p.v_stride = bshd(1024, 8, 128);
    p.max_seqlen = 1024;
    p.batch_cache = 2;
    return p;
  };
  struct E {
    const char* what;
    const char* expect;  // a word the message must contain
    void (*edit)(DecodeParams&);
  };
  const E cases[] = {
      {"head dim 96", "head dim", [](DecodeParams& p) { p.d = 96; }},
      {"float32", "dtype", [](DecodeParams& p) { p.dtype = DType::kFloat32; }},
      {"h 30 / h_k 8", "multiple", [](DecodeParams& p) { p.h = 30; }},
      {"q misaligned", "16-byte", [](DecodeParams& p) { p.q = reinterpret_cast<void*>(0x10008); }},
      {"k row stride 1028", "strides", [](DecodeParams& p) { p.k_stride.row = 1028; }},
      {"k_new without v_new", "together",
       [](DecodeParams& p) {
         p.k_new = reinterpret_cast<void*>(0x60000);
         p.s_new = 1;
       }},
      {"paged + cache_batch_idx", "not supported",
       [](DecodeParams& p) {
         p.block_table = static_cast<const int32_t*>(reinterpret_cast<void*>(0x70000));
         p.block_table_batch_stride = 4;
         p.page_size = 16;
         p.num_blocks = 8;
         p.max_blocks_per_seq = 4;
         p.cache_batch_idx = static_cast<const int32_t*>(reinterpret_cast<void*>(0x80000));
       }},
      {"4 splits, no workspace", "workspace", [](DecodeParams& p) { p.num_splits = 4; }},
      {"cache rows < batch", "fewer rows", [](DecodeParams& p) { p.batch_cache = 1; }},
      // Without cache_seqlens every row is full (a plain forward); appending needs the lengths.
      {"append, no cache_seqlens", "cache_seqlens",
       [](DecodeParams& p) {
         p.cache_seqlens = nullptr;
         p.k_new = reinterpret_cast<void*>(0x60000);
         p.v_new = reinterpret_cast<void*>(0x68000);
         p.s_new = 1;
       }},
  };
  int fails = 0;
  for (const E& e : cases) {
    DecodeParams p = base();
    e.edit(p);
    std::string msg = "(nothing thrown)";
    bool ok = false;
    try {
      flashattn::decode::decode_forward(p, nullptr, nullptr);
    } catch (const flashattn::cuda::Error& err) {
      msg = err.what();
      ok = msg.find(e.expect) != std::string::npos && err.code() == -1;
    } catch (const std::exception& err) {
      msg = std::string("wrong exception type: ") + err.what();
    }
    fails += ok ? 0 : 1;
    std::printf("%-5s %-26s %s\n", ok ? "ok" : "FAIL", e.what, msg.c_str());
  }
  return fails;
}

// ---- timing ---------------------------------------------------------------------------------------
__global__ void spin_kernel(long long cycles) {
  const long long t0 = clock64();
  while (clock64() - t0 < cycles) {
  }
}

__global__ void fill_kernel(uint16_t* p, size_t n, uint32_t salt) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    uint32_t x = static_cast<uint32_t>(i) * 2654435761u ^ salt ^ static_cast<uint32_t>(i >> 32);
    x ^= x >> 15;
    x *= 2246822519u;
    x ^= x >> 13;
    // bf16 in ±[0.5, 1): sign, exponent 126, 7 random mantissa bits
    p[i] = static_cast<uint16_t>(((x & 1u) << 15) | (126u << 7) | ((x >> 8) & 0x7fu));
  }
}

struct BenchRow {
  int b, ctx, page;
  int splits;
  double ms, tbs;
};

int run_bench(bool bars_only) {
  const int h = 32, h_k = 8, d = 128;
  const int batches[] = {1, 16, 64};
  const int ctxs[] = {1024, 4096, 8192, 16384, 32768, 131072};
  const int pages[] = {0, 16, 256};
  const size_t max_elems = static_cast<size_t>(64) * 131072 * h_k * d;  // the largest cache
  const size_t rotate_bytes = 512ull << 20;
  DevBuf<uint16_t> kpool(max_elems), vpool(max_elems);
  fill_kernel<<<4096, 256>>>(kpool.p, kpool.n, 0x1234u);
  fill_kernel<<<4096, 256>>>(vpool.p, vpool.n, 0x9876u);
  DevBuf<uint16_t> q(static_cast<size_t>(64) * h * d), out(static_cast<size_t>(64) * h * d);
  fill_kernel<<<64, 256>>>(q.p, q.n, 0x55u);
  DevBuf<float> lse(static_cast<size_t>(64) * h);
  DevBuf<int32_t> lens(64);
  DevBuf<int32_t> table(static_cast<size_t>(64) * 131072 / 16);
  DevBuf<unsigned char> ws(64ull << 20);
  CK(cudaDeviceSynchronize());
  cudaStream_t st;
  CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  const int sms = sm_count();
  std::vector<BenchRow> rows;
  std::printf("\n== decode timing: h 32 / h_k 8, d128 bf16, s_q 1, no append; median of 15 (CUDA events), "
              "TB/s of K/V read\n%-4s %-7s %-8s %6s %10s %8s\n",
              "b", "ctx", "layout", "splits", "us", "TB/s");
  Rng rng(42);
  // One shape timed: `forced` > 0 overrides the split heuristic.
  auto measure = [&](int b, int ctx, int page, int forced) {
    const size_t elems = static_cast<size_t>(b) * ctx * h_k * d;  // one of K or V
    const size_t bytes = 2 * elems * 2;
    const int sets = static_cast<int>(std::max<size_t>(1, std::min(max_elems / elems, (rotate_bytes + bytes - 1) / bytes)));
    DecodeParams p;
    p.b = b;
    p.s_q = 1;
    p.h = h;
    p.h_k = h_k;
    p.d = d;
    p.dtype = DType::kBFloat16;
    p.scale = 1.f / std::sqrt(static_cast<float>(d));
    p.q = q.p;
    p.out = out.p;
    p.lse = lse.p;
    p.q_stride = p.o_stride = bshd(1, h, d);
    lens.upload(std::vector<int32_t>(64, ctx));  // the first b are read
    p.cache_seqlens = lens.p;
    if (page == 0) {
      p.k_stride = p.v_stride = bshd(ctx, h_k, d);
      p.max_seqlen = ctx;
      p.batch_cache = b;
    } else {
      const int bps = ctx / page;
      std::vector<int32_t> perm(static_cast<size_t>(b) * bps);
      for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<int32_t>(i);
      for (size_t i = perm.size() - 1; i > 0; --i) std::swap(perm[i], perm[rng.below(static_cast<int>(i + 1))]);
      perm.resize(table.n, 0);
      table.upload(perm);
      p.block_table = table.p;
      p.block_table_batch_stride = bps;
      p.page_size = page;
      p.num_blocks = b * bps;
      p.max_blocks_per_seq = bps;
      p.k_stride = p.v_stride = bshd(page, h_k, d);
    }
    p.num_splits = forced > 0 ? forced : flashattn::decode::decode_num_splits(p, sms);
    p.workspace_bytes = flashattn::decode::decode_workspace_bytes(p, sms);
    if (p.workspace_bytes > ws.n) throw std::runtime_error("bench workspace too small");
    const int warm = 3, iters = 15;
    std::vector<cudaEvent_t> ev(2 * iters);
    for (auto& e : ev) CK(cudaEventCreate(&e));
    auto call = [&](int i) {
      const size_t off = static_cast<size_t>(i % sets) * elems;
      p.k_cache = kpool.p + off;
      p.v_cache = vpool.p + off;
      flashattn::decode::decode_forward_reusing(p, ws.p, st);
    };
    // Each shape's counters sit where another split count keeps partials: zero them first.
    CK(cudaMemsetAsync(ws.p, 0, p.workspace_bytes, st));
    for (int i = 0; i < warm; ++i) call(i);
    spin_kernel<<<1, 1, 0, st>>>(4000000);  // ~2 ms: the host queues every timed call meanwhile
    for (int i = 0; i < iters; ++i) {
      CK(cudaEventRecord(ev[2 * i], st));
      call(warm + i);
      CK(cudaEventRecord(ev[2 * i + 1], st));
    }
    CK(cudaStreamSynchronize(st));
    std::vector<float> ms(iters);
    for (int i = 0; i < iters; ++i) CK(cudaEventElapsedTime(&ms[i], ev[2 * i], ev[2 * i + 1]));
    for (auto& e : ev) CK(cudaEventDestroy(e));
    std::sort(ms.begin(), ms.end());
    const double med = ms[iters / 2];
    const double tbs = bytes / (med * 1e-3) / 1e12;
    return BenchRow{b, ctx, page, p.num_splits, med, tbs};
  };
  auto is_bar_shape = [](int b, int ctx, int page) {
    return (b == 1 && (ctx == 8192 || ctx == 131072) && page != 256) || (b == 16 && ctx == 8192 && page != 256) ||
           (b == 64 && ctx == 4096 && page == 0);
  };
  for (int b : batches)
    for (int ctx : ctxs)
      for (int page : pages) {
        if (bars_only && !is_bar_shape(b, ctx, page)) continue;
        const BenchRow r = measure(b, ctx, page, 0);
        rows.push_back(r);
        std::printf("%-4d %-7d %-8s %6d %10.1f %8.3f\n", b, ctx, page ? ("paged" + std::to_string(page)).c_str() : "contig",
                    r.splits, r.ms * 1e3, r.tbs);
      }
  // Split sweep on the bar shapes (contiguous): data for tuning decode_num_splits.
  std::printf("\n== split sweep (contiguous; TB/s at forced split counts, * = the heuristic's choice)\n");
  const int sweep[][2] = {{1, 8192}, {1, 131072}, {16, 8192}, {64, 4096}};
  for (const auto& sh : sweep) {
    if (bars_only && sh[0] != 1) continue;
    const int chosen = measure(sh[0], sh[1], 0, 0).splits;
    std::printf("b%-2d x %-4s", sh[0], (std::to_string(sh[1] / 1024) + "k").c_str());
    for (int sp : {1, 2, 4, 8, 16, 24, 32, 33, 48, 64, 96, 128}) {
      if (sp > 1 && static_cast<long long>(sp) * 128 > sh[1]) break;
      std::printf("  %d%s:%.2f", sp, sp == chosen ? "*" : "", measure(sh[0], sh[1], 0, sp).tbs);
    }
    std::printf("\n");
  }
  CK(cudaStreamDestroy(st));
  auto find = [&](int b, int ctx, int page) -> const BenchRow& {
    for (const auto& r : rows)
      if (r.b == b && r.ctx == ctx && r.page == page) return r;
    throw std::runtime_error("bench row missing");
  };
  if (!bars_only) {  // the summary needs every shape; --bars timed only the bar shapes
    std::printf("\n== summary (TB/s of K/V read; contig / paged16 / paged256)\n%-10s %9s %9s %9s\n", "shape",
                "contig", "paged16", "paged256");
    for (int b : batches)
      for (int ctx : {1024, 8192, 131072})
        std::printf("b%-2d x %-4s %9.3f %9.3f %9.3f\n", b, (std::to_string(ctx / 1024) + "k").c_str(),
                    find(b, ctx, 0).tbs, find(b, ctx, 16).tbs, find(b, ctx, 256).tbs);
  }
  struct Bar {
    const char* what;
    double got, need;
  };
  const double ratio = find(16, 8192, 16).tbs / find(16, 8192, 0).tbs;
  const Bar bars[] = {{"bar b16 x 8k   >= 3.8 TB/s", find(16, 8192, 0).tbs, 3.8},
                      {"bar b1 x 8k    >= 1.6 TB/s", find(1, 8192, 0).tbs, 1.6},
                      {"bar b1 x 128k  >= 3.9 TB/s", find(1, 131072, 0).tbs, 3.9},
                      {"bar b64 x 4k   >= 4.0 TB/s", find(64, 4096, 0).tbs, 4.0},
                      {"bar paged16/contig b16 x 8k >= 0.90", ratio, 0.9}};
  int miss = 0;
  for (const Bar& bar : bars) {
    const bool ok = bar.got >= bar.need;
    miss += ok ? 0 : 1;
    std::printf("%-38s %7.3f  %s\n", bar.what, bar.got, ok ? "MET" : "MISSED");
  }
  return miss;
}

}  // namespace

int main(int argc, char** argv) {
  bool check = false, bench = false, errors = false, bars_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--check") check = true;
    else if (a == "--bench") bench = true;
    else if (a == "--errors") errors = true;
    else if (a == "--bars") bench = bars_only = true;
    else {
      std::fprintf(stderr, "usage: decode_check [--check] [--bench] [--bars] [--errors]\n");
      return 2;
    }
  }
  if (errors && !check && !bench) return (run_checker_selftest() + run_error_checks()) ? 1 : 0;  // no GPU
  if (!check && !bench) check = bench = true;
  try {
    int fails = 0, misses = 0;
    if (check) fails = run_checker_selftest() + run_error_checks();
    if (check) fails += run_checks(std::random_device{}() ^ (static_cast<uint64_t>(std::random_device{}()) << 32));
    if (bench) misses = run_bench(bars_only);
    if (check) std::printf("correctness: %s\n", fails ? "FAILED" : "all passed");
    if (bench) std::printf("bars: %d missed\n", misses);
    return fails ? 1 : 0;
  } catch (const std::exception& e) {
    std::printf("error: %s\n", e.what());
    return 3;
  }
}
