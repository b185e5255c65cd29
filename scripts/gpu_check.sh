#!/usr/bin/env bash
# Issue 13's GPU checks in one call on a lent GPU machine (a CUDA PyTorch 2.x, CMake,
# ninja, a compiler; no Halide, no Debian -dev packages, no internet). Prepare .gpu/ here
# first (scripts/prepare_gpu_check.sh), then with the device tool:
#   run(command="bash scripts/gpu_check.sh", carry=[".gpu"], timeout_s=590)
# Phases, each time-boxed, logs under $OUT (the device tool's folder, else /tmp/gpu_out):
#   env        the GPU, CUDA, PyTorch and its C++ ABI
#   configure  against the pip LibTorch, from the carried kernels artifact and deps
#   build      dtokd, the tests, the GPU benchmark, the peer step (-k 0: every error at once)
#   tests      the standalone CUDA kernel tests; the GPU tests in dtokd_tests
#   bench      bm_gpu_kernels; resnet8x4 dto and kd steps (batch 64, 3x32x32, 100 classes)
#              against the eager PyTorch peer on the same GPU and PyTorch
# A later call on the same warm machine reuses build-gpu/ (ninja rebuilds what changed).
# PHASES="tests bench" (a subset, in order) skips the others.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here" || exit 1
OUT="${OUT:-/tmp/gpu_out}"
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
phases="${PHASES:-env configure build tests bench}"
t0=$SECONDS
phase() { echo "=== $1 (+$((SECONDS - t0)) s)"; }
want() { [[ " $phases " == *" $1 "* ]]; }
deps="$here/.gpu/deps/usr"
libs="$deps/lib/x86_64-linux-gnu"
export LD_LIBRARY_PATH="$libs:${LD_LIBRARY_PATH:-}"  # libtomlplusplus.so.3, libbenchmark.so.1
jobs="$(nproc)"

if want env; then
  phase env
  nvidia-smi -L
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  (nvcc --version | tail -1) 2>/dev/null || echo "no nvcc on PATH"
  head -2 /etc/os-release; ldd --version | head -1; g++ --version | head -1; cmake --version | head -1; nproc
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cxx11 abi",
torch._C._GLIBCXX_USE_CXX11_ABI, torch.utils.cmake_prefix_path)'
fi

if want configure; then
  phase configure
  [ -f .gpu/kernels/lib/cmake/dtokd_kernels/dtokd_kernelsConfig.cmake ] && [ -d "$deps" ] ||
    { echo "gpu_check: .gpu/ is not prepared (scripts/prepare_gpu_check.sh, then carry .gpu)"; exit 1; }
  torch_prefix="$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')"
  timeout 120 cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DDTOKD_KERNELS_DIR="$here/.gpu/kernels" -DDTOKD_TORCH_CUDA=ON \
    -DCMAKE_PREFIX_PATH="$torch_prefix;$deps" \
    -DZLIB_INCLUDE_DIR="$deps/include" -DZLIB_LIBRARY="$libs/libz.a" \
    -DPNG_PNG_INCLUDE_DIR="$deps/include" -DPNG_LIBRARY="$libs/libpng16.a" \
    -DJPEG_INCLUDE_DIR="$deps/include;$deps/include/x86_64-linux-gnu" -DJPEG_LIBRARY="$libs/libjpeg.a" \
    -DDTOKD_TEST_SOURCES="test_device.cpp;test_flat_arena.cpp;test_kernel_input_checks.cpp;test_checkpoint.cpp" \
    >"$OUT/configure.log" 2>&1 || { tail -40 "$OUT/configure.log"; exit 1; }
  grep "dtokd:" "$OUT/configure.log"
fi

if want build; then
  phase build
  # The product and its tests first: a benchmark that does not compile must not cost the tests.
  timeout 330 ninja -C build-gpu -k 0 -j "$jobs" dtokd dtokd_tests dtokd_cuda_tests >"$OUT/build.log" 2>&1
  rc=$?
  grep -E "error|FAILED" "$OUT/build.log" | head -60
  [ $rc = 0 ] || { echo "gpu_check: build failed (rc $rc; $OUT/build.log)"; exit 1; }
  timeout 120 ninja -C build-gpu -k 0 -j "$jobs" bm_gpu_kernels peer_step >"$OUT/build_bench.log" 2>&1 ||
    { grep -E "error|FAILED" "$OUT/build_bench.log" | head -30; echo "gpu_check: a benchmark did not build"; }
  build-gpu/pipelines/dtokd info | tee "$OUT/info.txt"
fi

if want tests; then
  phase tests
  timeout 60 build-gpu/tests/dtokd_cuda_tests --gtest_brief=1
  timeout 300 build-gpu/tests/dtokd_tests --gtest_brief=1 --gtest_output=xml:"$OUT/tests.xml" \
    --gtest_filter='Gpu*:*/Gpu*:Device.*:FlatArena.*:KernelInputChecks*:Checkpoint.*'
fi

if want bench; then
  phase bench
  [ -x build-gpu/bench/bm_gpu_kernels ] && [ -x build-gpu/bench/peer_step ] ||
    echo "gpu_check: benchmark binaries missing (build_bench.log)"
  timeout 120 build-gpu/bench/bm_gpu_kernels --benchmark_min_time=0.2 --benchmark_repetitions=3 \
    --benchmark_report_aggregates_only=true --benchmark_out="$OUT/bm_gpu_kernels.json" | tail -20
  shape=(--model resnet8x4 --input 3x32x32 --classes 100 --batch 64)
  for kernels in halide torch; do
    for method in kd dto; do
      dir="/tmp/peer_${method}_$kernels"
      rm -rf "$dir"
      timeout 60 build-gpu/bench/peer_step dump --device cuda --kernels "$kernels" "${shape[@]}" --method "$method" \
        --out "$dir" || continue
      timeout 60 python3 bench/peer/dto_step.py --device cuda check "$dir"
      timeout 60 build-gpu/bench/peer_step time --device cuda --kernels "$kernels" "${shape[@]}" --method "$method" \
        --warmup 20 --steps 200 >"$OUT/dtokd_${method}_$kernels.json"
    done
  done
  for method in kd dto; do
    timeout 60 python3 bench/peer/dto_step.py --device cuda time "/tmp/peer_${method}_halide" --method "$method" \
      --warmup 20 --steps 200 >"$OUT/torch_$method.json"
  done
  # Median step times, dtokd / peer and dto / kd.
  python3 - "$OUT" <<'PY'
import json, statistics, sys, os
out = sys.argv[1]
def median(name):
    path = os.path.join(out, name)
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return None
    return statistics.median(json.loads(open(path).read().strip().splitlines()[-1])["step_ms"])
t = {name: median(name + ".json")
     for name in ("dtokd_kd_halide", "dtokd_dto_halide", "dtokd_kd_torch", "dtokd_dto_torch", "torch_kd", "torch_dto")}
print("median ms/step (resnet8x4, batch 64, 3x32x32, 100 classes):")
for k, v in t.items():
    print(f"  {k:18s} {v if v is None else round(v, 3)}")
def ratio(a, b):
    return None if t.get(a) is None or t.get(b) is None else round(t[a] / t[b], 3)
print("dto: dtokd(halide) / peer", ratio("dtokd_dto_halide", "torch_dto"), "(goal <= 0.9)")
print("dto: dtokd(torch) / peer ", ratio("dtokd_dto_torch", "torch_dto"))
print("kd:  dtokd(halide) / peer", ratio("dtokd_kd_halide", "torch_kd"))
print("dtokd(halide) dto / kd   ", ratio("dtokd_dto_halide", "dtokd_kd_halide"))
PY
fi
phase finished
