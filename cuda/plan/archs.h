// archs.h — the one parser of compiled CUDA arch lists, and the one rule for "does code compiled
// for these archs run on a device of this capability". probe(), the plan (dispatch, select(),
// inspect, bench) all use it. Plain C++: no CUDA headers, so the CPU-only build and the tests can
// ask it about hypothetical builds and devices.
#pragma once

#include <string>
#include <vector>

namespace flashattn::plan {

// One entry of a CMake CUDA_ARCHITECTURES list: "80", "90a", "86-real", "80-virtual", "100f".
// A plain entry holds machine code (SASS) and PTX, as CMake compiles it.
struct ArchTarget {
  int major = 0, minor = 0;
  char suffix = 0;    // 'a' (arch-specific: runs only on exactly major.minor) or 'f' (family), else 0
  bool sass = true;   // machine code for sm_XY
  bool ptx = true;    // PTX for compute_XY (JIT-compiled by the driver for newer devices)
  std::string label;  // "sm_90a", or "compute_80" for PTX only
};

// Parses "80;90a", "80,90a", "sm_80 sm_90a". Returns false (and says why) on an entry it cannot
// read, such as "all" or "native"; the entries it could read are in *out either way.
bool parse_arch_list(const std::string& spec, std::vector<ArchTarget>* out, std::string* why);

// Whether code compiled for `archs` runs on a device of capability major.minor:
//   SASS sm_XY runs on X.Z for Z >= Y (same major); sm_XYa only on exactly X.Y;
//   sm_XYf on X.Z for Z >= Y; PTX compute_XY is JIT-compiled for any capability >= X.Y
//   (compute_XYa only for exactly X.Y, compute_XYf within the family).
// `min_cc` (e.g. 80) ignores targets older than what the kernels need.
bool runs_on(const std::vector<ArchTarget>& archs, int major, int minor, int min_cc = 0);

// Whether the archs hold machine code specifically for major.minor with suffix 'a' (sm_90a):
// what wgmma/TMA kernels need.
bool has_arch_specific(const std::vector<ArchTarget>& archs, int major, int minor);

// "sm_80, sm_90a"
std::string arch_list_text(const std::vector<ArchTarget>& archs);

}  // namespace flashattn::plan
