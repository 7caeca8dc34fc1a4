#!/usr/bin/env bash
# bwd_build.sh — builds the backward dev harness into .devbin/bwd_check (git-ignored).
# Usage: cuda/dev/bwd_build.sh [arch, default 90a] [jobs, default nproc]
#        cuda/dev/bwd_build.sh --mag [arch]   only the magnitude harness .devbin/bwd_mag (one file)
# Compiles each file in parallel; per-file compile times go to .devbin/bwd_times.txt and the
# ptxas register/spill report of every backward kernel to .devbin/bwd_ptxas.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [[ ${1:-} == --mag ]]; then
  mkdir -p .devbin
  nvcc -std=c++17 -O3 --expt-relaxed-constexpr -lineinfo "-gencode=arch=compute_${2:-90a},code=sm_${2:-90a}" -I. -Icuda \
    cuda/dev/bwd_mag.cu -o .devbin/bwd_mag
  echo "built .devbin/bwd_mag (${2:-90a})"
  exit 0
fi
arch=${1:-90a}
jobs=${2:-$(nproc)}
out=.devbin/bwd-obj-$arch
mkdir -p "$out"
flags=(-std=c++17 -O3 --expt-relaxed-constexpr -lineinfo "-gencode=arch=compute_$arch,code=sm_$arch"
       -I. -Icuda -Xptxas -v)
srcs=(cuda/generated/sm80_bwd_*.cu cuda/sm80/bwd_run.cu cuda/dev/bwd_variants.cu cuda/dev/bwd_check.cu)
: > .devbin/bwd_times.txt
build_one() {
  local src=$1 obj t0 t1
  obj=$out/$(basename "${src%.cu}").o
  t0=$(date +%s.%N)
  nvcc "${flags[@]}" -c "$src" -o "$obj" > "$obj.log" 2>&1 || { cat "$obj.log"; return 1; }
  t1=$(date +%s.%N)
  printf '%-32s %6.1f s\n' "$src" "$(echo "$t1 - $t0" | bc)" >> .devbin/bwd_times.txt
}
for src in "${srcs[@]}"; do
  while (( $(jobs -rp | wc -l) >= jobs )); do wait -n; done
  build_one "$src" &
done
wait
nvcc "-gencode=arch=compute_$arch,code=sm_$arch" "$out"/*.o -o .devbin/bwd_check -lpthread
for log in "$out"/*.o.log; do
  awk '/Compiling entry function/ {name=$0} /Used [0-9]+ registers/ {print name; print} /spill/ {print}' "$log"
done | sed -E 's/ptxas info *: //' > .devbin/bwd_ptxas.txt
sort .devbin/bwd_times.txt
echo "built .devbin/bwd_check ($arch)"
