#!/usr/bin/env bash
# sm90_build.sh — builds the sm90 forward dev harnesses into .devbin/sm90_fwd_check and
# .devbin/sm90_fp8_check (the e4m3 forward; git-ignored).
# Usage: cuda/dev/sm90_build.sh [jobs, default nproc]
# Writes the ptxas register/spill report of every sm90 kernel to .devbin/sm90_ptxas.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
jobs=${1:-$(nproc)}
out=.devbin/obj-sm90
mkdir -p "$out"
flags=(-std=c++17 -O3 --expt-relaxed-constexpr -lineinfo "-gencode=arch=compute_90a,code=sm_90a" -I. -Icuda -Xptxas -v -DFLASHATTN_CUDA_ARCHS='"90a"')
srcs=(cuda/generated/sm90_fwd_*.cu cuda/sm90/fwd_host.cu cuda/sm90/tma_map.cu cuda/runtime.cu cuda/plan/*.cpp cuda/sm90/fp8_*.cu cuda/quant/quant.cu cuda/dev/sm90_fwd_check.cu cuda/dev/sm90_fp8_check.cu)
for src in "${srcs[@]}"; do
  while (( $(jobs -rp | wc -l) >= jobs )); do wait -n; done
  obj=$out/$(basename "${src%.cu}").o
  ( nvcc "${flags[@]}" -c "$src" -o "$obj" > "$obj.log" 2>&1 || { cat "$obj.log"; exit 1; } ) &
done
for pid in $(jobs -p); do wait "$pid" || { echo "build failed"; exit 1; }; done
lib=$(ls "$out"/*.o | grep -v -e sm90_fwd_check.o -e sm90_fp8_check.o)
for bin in sm90_fwd_check sm90_fp8_check; do
  nvcc "-gencode=arch=compute_90a,code=sm_90a" $lib "$out/$bin.o" -o .devbin/$bin -lpthread -Xcompiler -static-libstdc++,-static-libgcc
done
cat "$out"/*.o.log | python3 -c '
import re, sys
name = ""
for line in sys.stdin:
    m = re.search(r"Function properties for (\S+)", line)
    if m: name = m.group(1)
    m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line)
    if m: spill = m.groups()
    m = re.search(r"Used (\d+) registers", line)
    if m and "fwd_kernel" in name:
        t = re.search(r"FwdTileILi(\d+)ELi(\d+)ELi(\d+)ELb([01])E", name).groups()
        dt = ("e4m3>" if "E4m3" in name else "") + ("bf16" if "Bf16" in name else "fp16")
        print("d%s N%s s%s pp%s %s  regs %s  stack %s spill st %s ld %s" % (t + (dt, m.group(1)) + spill))
    if "warning" in line.lower(): print(line.rstrip())
' | sort -u > .devbin/sm90_ptxas.txt
cat .devbin/sm90_ptxas.txt
echo "built .devbin/sm90_fwd_check .devbin/sm90_fp8_check"
