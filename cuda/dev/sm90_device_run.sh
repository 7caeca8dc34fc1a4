#!/usr/bin/env bash
# sm90_device_run.sh — one device call for the sm90 forward: SASS facts, correctness of every
# candidate (one block per tile first, then persistent), variants, timing, compute-sanitizer,
# ncu, and torch SDPA (cuDNN, flash) on the bench shapes through scripts/torch_bench.py.
# Copy next to it: the harness binary (cuda/dev/sm90_build.sh → .devbin/sm90_fwd_check) and
# scripts/torch_bench.py; run from that folder. Logs under $OUT; about 60 s on an H200.
cd "$(dirname "$0")"
O=${OUT:-/tmp/out}; mkdir -p "$O"
B=./sm90_fwd_check
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw,temperature.gpu --format=csv,noheader | tee "$O/smi.txt"
echo "=== sass"; cuobjdump -sass $B > /tmp/sass.txt 2>&1
for k in HGMMA UTMALDG LDL STL; do echo "$k: $(grep -c "$k" /tmp/sass.txt)"; done | tee "$O/sass.txt"
awk '/Function :/{f=$3} /HGMMA/{h[f]++} /UTMALDG/{u[f]++} /LDL|STL/{l[f]++} END{for(k in h) printf "%s HGMMA %d UTMALDG %d LDL/STL %d\n", k, h[k], u[k], l[k]}' /tmp/sass.txt | sort >> "$O/sass.txt"
echo "=== check --np"; timeout 50 $B --check --np > "$O/check_np.txt" 2>&1; echo "rc=$?" >> "$O/check_np.txt"
grep -E "FAIL|correctness|rc=|rror" "$O/check_np.txt" | head -20
echo "=== check"; timeout 50 $B --check > "$O/check.txt" 2>&1; rc=$?; echo "rc=$rc" >> "$O/check.txt"
grep -E "FAIL|correctness|rc=|rror" "$O/check.txt" | head -20
NP=""; [ $rc -eq 124 ] && NP="--np" && echo "persistent check hung: --np from here"
echo "=== variants"; timeout 60 $B --variants $NP > "$O/variants.txt" 2>&1; echo "rc=$?" >> "$O/variants.txt"
echo "=== timing"; timeout 50 $B --time $NP > "$O/time.txt" 2>&1; echo "rc=$?" >> "$O/time.txt"
for tool in memcheck racecheck synccheck; do
  echo "=== $tool"; timeout 30 compute-sanitizer --tool $tool $B --small $NP > "$O/san_$tool.txt" 2>&1
  echo "rc=$?" >> "$O/san_$tool.txt"; tail -2 "$O/san_$tool.txt"
done
echo "=== ncu"; timeout 30 ncu --clock-control none -k regex:fwd_kernel -s 2 -c 1 --section SpeedOfLight --section Occupancy \
  $B --one 128 16384 0 > "$O/ncu.txt" 2>&1; echo "rc=$?" >> "$O/ncu.txt"
grep -E "SM Frequency|Duration|Compute \(SM\)|Achieved Occupancy|rc=" "$O/ncu.txt" | head -8
echo "=== torch"
python3 -c '
import json
cfg = [{"op": "fwd", "batch": 16384 // s, "seqlen": s, "heads": 2048 // d, "headDim": d, "causal": c}
       for d in (64, 128, 256) for c in (False, True) for s in (512, 1024, 2048, 4096, 8192, 16384)]
print(json.dumps({"dtype": "bfloat16", "device": 0, "warmup": 5, "iters": 25, "backends": ["cudnn", "flash"], "configs": cfg}))
' | timeout 120 python3 torch_bench.py > "$O/torch.json" 2> "$O/torch.log"; echo "torch rc=$?"
echo "=== variants table"; tail -14 "$O/variants.txt"
echo "=== timing table"; tail -48 "$O/time.txt"
echo "total ${SECONDS}s"
