#!/usr/bin/env bash
# sm90_bwd_build.sh — builds the sm90 backward dev harness into .devbin/sm90_bwd_check (git-ignored).
# Usage: cuda/dev/sm90_bwd_build.sh [jobs, default nproc]
# Writes the ptxas register/spill report of every sm90 backward kernel to .devbin/sm90_bwd_ptxas.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
jobs=${1:-$(nproc)}
out=.devbin/obj-sm90-bwd
mkdir -p "$out"
flags=(-std=c++17 -O3 --expt-relaxed-constexpr -lineinfo "-gencode=arch=compute_90a,code=sm_90a" -I. -Icuda -Xptxas -v)
srcs=(cuda/generated/sm90_bwd_*.cu cuda/sm90/bwd_host.cu cuda/sm90/tma_map.cu cuda/dev/sm90_bwd_check.cu)
for src in "${srcs[@]}"; do
  while (( $(jobs -rp | wc -l) >= jobs )); do wait -n; done
  obj=$out/$(basename "${src%.cu}").o
  ( nvcc "${flags[@]}" -c "$src" -o "$obj" > "$obj.log" 2>&1 || { cat "$obj.log"; exit 1; } ) &
done
for pid in $(jobs -p); do wait "$pid" || { echo "build failed"; exit 1; }; done
nvcc "-gencode=arch=compute_90a,code=sm_90a" "$out"/*.o -o .devbin/sm90_bwd_check -lpthread -Xcompiler -static-libstdc++,-static-libgcc
for log in "$out"/*.o.log; do
  awk '/Compiling entry function/ {name=$0} /Used [0-9]+ registers/ {print name; print} /spill/ {print}' "$log"
done | sed -E 's/ptxas info *: //' | grep -B1 -A1 "bwd" > .devbin/sm90_bwd_ptxas.txt || true
grep -E "spill" .devbin/sm90_bwd_ptxas.txt | sort | uniq -c
echo "built .devbin/sm90_bwd_check"
