#!/usr/bin/env bash
# build-decode-check.sh — builds the decode harness (cuda/dev/decode_check.cu + cuda/decode/*.cu)
# for sm_80 and sm_90a into one binary, .devbin/decode/decode_check, and writes the ptxas
# register / spill report of every decode kernel to .devbin/decode/ptxas.txt (printed too).
# Fails when any kernel spills. Usage: cuda/dev/build-decode-check.sh [jobs, default 2]
set -euo pipefail
cd "$(dirname "$0")/../.."
jobs=${1:-2}
out=.devbin/decode
mkdir -p "$out"
flags=(-std=c++17 -O3 --expt-relaxed-constexpr -lineinfo
       -gencode=arch=compute_80,code=sm_80 -gencode=arch=compute_90a,code=sm_90a
       -I. -Icuda -Xptxas -v -DFLASHATTN_CUDA_ARCHS='"80,90a"')
srcs=(cuda/decode/decode.cu cuda/decode/decode_hd64.cu cuda/decode/decode_hd128.cu cuda/decode/decode_hd256.cu
      cuda/dev/decode_check.cu cuda/runtime.cu cuda/plan/*.cpp)
pids=()
fail=0
for src in "${srcs[@]}"; do
  if (( ${#pids[@]} >= jobs )); then wait "${pids[0]}" || fail=1; pids=("${pids[@]:1}"); fi
  obj=$out/$(basename "${src%.cu}").o
  ( nvcc "${flags[@]}" -c "$src" -o "$obj" > "$obj.log" 2>&1 || { cat "$obj.log"; exit 1; } ) &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || fail=1; done
(( fail == 0 )) || { echo "compile failed"; exit 1; }
nvcc -gencode=arch=compute_80,code=sm_80 -gencode=arch=compute_90a,code=sm_90a "$out"/*.o -o "$out/decode_check"
cat "$out"/*.o.log | c++filt | python3 -c '
import re, sys
arch, name, rows, spills = "?", "", [], 0
for line in sys.stdin:
    m = re.search(r"Compiling entry function .(.*). for .(sm_\w+).", line)
    if m:
        name, arch = m.group(1), m.group(2)
        name = re.sub(r"flashattn::(decode|sm80)::", "", name)
        name = re.sub(r"\(.*", "", name)
        continue
    m = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", line)
    if m and name:
        sp = m.groups()
        spills += int(sp[0]) + int(sp[1])
    m = re.search(r"Used (\d+) registers", line)
    if m and name:
        rows.append("%-6s %-40s regs %3s  spill st %s ld %s" % (arch, name, m.group(1), sp[0], sp[1]))
        name = ""
print("\n".join(sorted(set(rows))))
sys.exit(1 if spills else 0)
' | tee "$out/ptxas.txt" || { echo "a decode kernel spills (see $out/ptxas.txt)"; exit 1; }
echo "built $out/decode_check (sm_80 + sm_90a)"
