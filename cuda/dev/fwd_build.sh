#!/usr/bin/env bash
# fwd_build.sh — builds the forward dev harness into .devbin/fwd_check (git-ignored).
# Usage: cuda/dev/fwd_build.sh [arch, default 90a] [jobs, default nproc]
# Compiles each translation unit in parallel and prints per-file compile time and the ptxas
# register/spill report of every forward kernel to .devbin/fwd_ptxas.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
arch=${1:-90a}
jobs=${2:-$(nproc)}
out=.devbin/obj-$arch
mkdir -p "$out"
flags=(-std=c++17 -O3 --expt-relaxed-constexpr -lineinfo "-gencode=arch=compute_$arch,code=sm_$arch"
       -I. -Icuda "-DFLASHATTN_CUDA_ARCHS=\"$arch\"" -Xptxas -v)
srcs=(cuda/generated/sm80_fwd_*.cu cuda/sm80/fwd_launch.cu cuda/plan/*.cpp cuda/forward.cu cuda/naive.cu cuda/bench.cu
      cuda/dev/fwd_variants.cu cuda/dev/fwd_check.cu)
: > .devbin/fwd_times.txt
build_one() {
  local src=$1 obj
  obj=$out/$(basename "${src%.cu}").o
  local t0=$(date +%s.%N)
  nvcc "${flags[@]}" -c "$src" -o "$obj" > "$obj.log" 2>&1 || { cat "$obj.log"; return 1; }
  local t1=$(date +%s.%N)
  printf '%-36s %6.1f s\n' "$src" "$(echo "$t1 - $t0" | bc)" >> .devbin/fwd_times.txt
}
export -f build_one
export out
export flags_str="${flags[*]}"
pids=()
for src in "${srcs[@]}"; do
  while (( $(jobs -rp | wc -l) >= jobs )); do wait -n; done
  build_one "$src" &
done
wait
nvcc "-gencode=arch=compute_$arch,code=sm_$arch" "$out"/*.o -o .devbin/fwd_check -lpthread
# register / spill report per forward kernel: tile, registers, spill stores/loads
cat "$out"/*.o.log | python3 -c '
import re, sys
name, spill, rows = "", ("?", "?"), set()
for line in sys.stdin:
    if "Compiling entry function" in line:
        name = line
    m = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", line)
    if m:
        spill = m.groups()
    m = re.search(r"Used (\d+) registers", line)
    if m and "fwd_kernel" in name:
        t = re.search(r"FwdTileILi(\d+)ELi(\d+)ELi(\d+)ELi(\d+)ELb([01])ELi(\d+)ELi(\d+)EL[ib](\d+)", name).groups()
        dt = "bf16" if "Bf16" in name else "fp16"
        rows.add("d%-4s %4sx%-4s w%s qreg=%s st%s b%s sch%s %s  regs %3s  spill st %s ld %s" % (t + (dt, m.group(1)) + spill))
print("\n".join(sorted(rows)))
' > .devbin/fwd_ptxas.txt
sort .devbin/fwd_times.txt
echo "built .devbin/fwd_check ($arch)"
