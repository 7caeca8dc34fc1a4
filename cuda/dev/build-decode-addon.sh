#!/usr/bin/env bash
# build-decode-addon.sh — relinks a CUDA addon with this tree's decode path for a GPU run, without
# a full CUDA build: the decode TUs (cuda/decode/*.cu, cuda/bench.cu, cuda/plan/decode_plan.cpp)
# are compiled here for sm_90a only (ptxas report in .devbin/addon/ptxas.txt), every other object
# comes from an existing CMake build (default /work/main/build-cuda) whose sources match this
# tree outside those files. Output: .devbin/addon/flashattn.node.
# Usage: cuda/dev/build-decode-addon.sh [cmake build dir]
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
base=${1:-/work/main/build-cuda}
out=.devbin/addon
mkdir -p "$out"
defs=(-DFLASHATTN_CUDA_ARCHS='"80,90a"' -DFLASHATTN_WITH_CUDA=1 -DFLASHATTN_WITH_SM90=1 -DNAPI_CPP_EXCEPTIONS
      -DNAPI_VERSION=8 -DNODE_ADDON_API_DISABLE_DEPRECATED -Dflashattn_EXPORTS)
incs=(-I"$root"/node_modules/node-api-headers/include -I"$root"/node_modules/node-addon-api -I"$root" -I"$root"/native
      -I"$root"/cuda -isystem /usr/local/cuda/include)
cu=(cuda/decode/decode.cu cuda/decode/decode_hd64.cu cuda/decode/decode_hd128.cu cuda/decode/decode_hd256.cu cuda/bench.cu)
for src in "${cu[@]}"; do
  obj=$out/$(basename "$src").o
  if [[ ! -f "$obj" || "$src" -nt "$obj" || -n "$(find cuda/decode cuda/plan -newer "$obj" -name '*.h*' 2>/dev/null)" ]]; then
    echo "nvcc $src"
    nvcc -forward-unknown-to-host-compiler "${defs[@]}" "${incs[@]}" -O3 -DNDEBUG \
      --generate-code=arch=compute_90a,code=[compute_90a,sm_90a] -Xcompiler=-fPIC --expt-relaxed-constexpr -lineinfo \
      -Xcompiler=-fvisibility=hidden -std=c++17 -Xptxas -v -x cu -c "$src" -o "$obj" > "$obj.log" 2>&1 || { cat "$obj.log"; exit 1; }
  fi
done
c++ "${defs[@]}" -DNODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS "${incs[@]}" -DBUILDING_NODE_EXTENSION -O3 -DNDEBUG -fPIC \
  -fvisibility=hidden -std=gnu++17 -c cuda/plan/decode_plan.cpp -o "$out/decode_plan.cpp.o"
# Every object of the base build's link line, ours in place of the decode ones.
objs=()
for o in $(sed -n 's/^build Release\/flashattn.node: CXX_SHARED_LIBRARY_LINKER__flashattn_Release \(.*\) | .*/\1/p' "$base/build.ninja"); do
  case "$o" in
    */cuda/decode/*.cu.o|*/cuda/bench.cu.o|*/cuda/plan/decode_plan.cpp.o) objs+=("$out/$(basename "$o")") ;;
    *) objs+=("$base/$o") ;;
  esac
done
c++ -fPIC -DBUILDING_NODE_EXTENSION -O3 -DNDEBUG -shared -Wl,-soname,flashattn.node -o "$out/flashattn.node" "${objs[@]}" \
  -L/usr/local/cuda/targets/x86_64-linux/lib/stubs -L/usr/local/cuda/targets/x86_64-linux/lib \
  /usr/local/cuda/lib64/libcudart_static.a -ldl /usr/lib/x86_64-linux-gnu/librt.a -lcudadevrt -lcudart_static -lrt -lpthread -ldl
cat "$out"/*.cu.o.log | c++filt | grep -E "Compiling entry|registers|spill" | grep -B2 -A0 "spill" | grep -E "entry|spill" | \
  sed -E 's/.*Compiling entry function .(.*). for .(sm_\w+)./\2 \1/; s/\(.*//' | paste - - | grep -E "split_kernel|combine" > "$out/ptxas.txt" || true
echo "built $out/flashattn.node ($(grep -c . "$out/ptxas.txt") decode kernels in $out/ptxas.txt)"
