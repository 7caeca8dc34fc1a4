#!/usr/bin/env bash
# run-decode-check.sh — runs the decode harness on the GPU host (built here by
# cuda/dev/build-decode-check.sh and carried with this script). Correctness first, then timing;
# the short summary table and the bar lines come last. Logs go to $OUT when it is set.
# Usage (from the repository root of the carried tree): bash .gpucarry/decode/run-decode-check.sh
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$here/decode_check"
[[ -x "$bin" ]] || bin="$here/../../.devbin/decode/decode_check"
out="${OUT:-/tmp}"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw --format=csv,noheader 2>/dev/null | sed 's/^/gpu: /'
rc=0
timeout 80 "$bin" --check --bench > "$out/decode_check.log" 2>&1 || rc=$?
echo "decode_check exit $rc (0: all correctness cases passed; 1: some failed; 3: error; 124: timed out)"
# everything except the correctness "ok" lines (those stay in the log); the summary ends it
grep -v '^ok ' "$out/decode_check.log" | tail -n 120
exit $rc
