#!/usr/bin/env bash
# Issue 15's GPU figures in one prepared run: sampling sprites/s, onnxruntime vs torch
# (bench/onnx_gpu.py), then `sm sheet --count N` process start to files written, per backend.
#
#   bench/gpu_check.sh                 # on the GPU machine: N = 100000; results under $OUT
#   bench/gpu_check.sh --cpu           # rehearsal on a CPU: small counts, the CUDA parts skipped
#
# Wheels: a missing package is carried as wheels in .wheels/ (git-ignored: name it in the device
# tool's `carry`); nothing is fetched. onnxruntime-gpu and onnxruntime must never both be installed
# (both install the `onnxruntime` package; the last one wins silently): with a
# .wheels/onnxruntime_gpu-*.whl the CPU onnxruntime is uninstalled first, and the script stops if
# both are still there. Without that wheel and without a CUDA provider in the installed onnxruntime,
# the onnxruntime figures are skipped and said so (the device image's onnxruntime is the CPU one;
# the onnxruntime-gpu wheel, ~256 MB, is larger than the 64 MiB a device run carries).
# Sized to finish in < 9 minutes on one GPU (budgets below); on the device tool:
#   run(command="bench/gpu_check.sh", timeout_s=600, carry=[".wheels"])   # $OUT is set there Results: $OUT/summary.md,
# $OUT/onnx_gpu.json, $OUT/sheet.jsonl, $OUT/env.txt, $OUT/gpu_check.log.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODE=gpu
[[ "${1:-}" == "--cpu" ]] && MODE=cpu
OUT=${OUT:-$ROOT/bench/results/gpu_check-$MODE}
PY=${PY:-python3}
WORK=$(mktemp -d /tmp/sm-gpu-check.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
LOG=$OUT/gpu_check.log
: >"$LOG"
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
log() { echo "[gpu_check $(date -u +%H:%M:%S)] $*" | tee -a "$LOG"; }

if [[ $MODE == gpu ]] && ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    log "no CUDA device visible to torch: run with --cpu for the rehearsal"; exit 2
fi
if [[ $MODE == gpu ]]; then
    COUNT=${COUNT:-100000}; BATCHES=${BATCHES:-1024,4096,16384}; REPEATS=3; BUDGET=150; DEVICE=cuda  # budget from the start, exports included
else
    COUNT=${COUNT:-256}; BATCHES=${BATCHES:-16}; REPEATS=1; BUDGET=900; DEVICE=cpu  # exports alone take ~1 min here
    export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # a shared 2-core box: torch's spinning threads cost 10x
fi

# ---- 1. wheels (GPU machine only: a rehearsal never changes the local environment)
pip_has() { "$PY" -m pip show "$1" >/dev/null 2>&1; }
if [[ $MODE == gpu ]]; then
    shopt -s nullglob
    gpu_wheels=(.wheels/onnxruntime_gpu-*.whl)
    other_wheels=()
    for w in .wheels/*.whl; do [[ $(basename "$w") == onnxruntime* ]] || other_wheels+=("$w"); done
    if (( ${#gpu_wheels[@]} )); then
        log "installing ${gpu_wheels[0]} (the CPU onnxruntime is removed first)"
        "$PY" -m pip uninstall -y onnxruntime onnxruntime-gpu >>"$LOG" 2>&1
        "$PY" -m pip install --no-index --no-deps "${gpu_wheels[0]}" >>"$LOG" 2>&1 || { log "onnxruntime-gpu install failed"; exit 1; }
    fi
    if (( ${#other_wheels[@]} )); then
        log "installing ${#other_wheels[@]} carried wheel(s)"
        "$PY" -m pip install --no-index --no-deps "${other_wheels[@]}" >>"$LOG" 2>&1 || { log "wheel install failed"; exit 1; }
    fi
    if pip_has onnxruntime && pip_has onnxruntime-gpu; then
        log "onnxruntime and onnxruntime-gpu are both installed: stopping (the results would be meaningless)"; exit 1
    fi
else
    log "CPU rehearsal: no wheel is installed, the local environment is left as it is"
fi

# ---- 2. the environment
{
    date -u; uname -a; nproc; cat /proc/loadavg
    if command -v nvidia-smi >/dev/null; then nvidia-smi -L; else echo "nvidia-smi: none"; fi
    "$PY" -c "import sys, torch, onnxruntime as o; print('python', sys.version.split()[0], '| torch', torch.__version__,
'| cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '-',
'| onnxruntime', o.__version__, o.get_available_providers())"
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt" | tee -a "$LOG"
ORT_CUDA=no
"$PY" -c "import onnxruntime as o, sys; sys.exit(0 if 'CUDAExecutionProvider' in o.get_available_providers() else 1)" \
    2>/dev/null && ORT_CUDA=yes

# ---- 3. sampling sprites/s (bench/onnx_gpu.py)
if [[ $MODE == gpu && $ORT_CUDA == no ]]; then
    log "SKIPPED onnxruntime on CUDA: the installed onnxruntime has no CUDAExecutionProvider (carry .wheels/onnxruntime_gpu-*.whl); torch only"
    VARIANTS=torch-eager,torch-autocast-fp16,torch-compile-fp16
elif [[ $MODE == gpu ]]; then
    VARIANTS=""
else
    log "SKIPPED the CUDA variants (torch fp16/compile, onnxruntime CUDA EP): CPU rehearsal"
    VARIANTS=torch-eager,ort-host,ort-device,ort-unrolled
fi
log "sampling: batches $BATCHES on $DEVICE${VARIANTS:+ (variants $VARIANTS)}"
"$PY" bench/onnx_gpu.py --device "$DEVICE" --batches "$BATCHES" --repeats "$REPEATS" --budget-s "$BUDGET" \
    --work "$WORK/onnx_gpu" --out "$OUT/onnx_gpu.json" ${VARIANTS:+--variants "$VARIANTS"} 2>&1 | tee -a "$LOG"
[[ ${PIPESTATUS[0]} == 0 ]] || log "bench/onnx_gpu.py failed (see above); going on with sm sheet"

# ---- 4. sm sheet --count N, process start to files written
"$PY" -m scarlet_moon.cli.main -q export-onnx --out "$WORK/m.onnx" >>"$LOG" 2>&1 || { log "sm export-onnx failed"; exit 1; }
: >"$OUT/sheet.jsonl"
sheet() {  # name, then sm sheet arguments
    local name=$1; shift
    local dir=$WORK/sheet-$name t0 t1 rc
    mkdir -p "$dir"
    t0=$(date +%s.%N)
    "$PY" -m scarlet_moon.cli.main -q sheet --count "$COUNT" --seed 0 --format json-hash,godot3,libgdx --out "$dir/s.png" "$@" \
        >>"$LOG" 2>&1
    rc=$?
    t1=$(date +%s.%N)
    "$PY" - "$name" "$COUNT" "$t0" "$t1" "$rc" "$dir" "$*" >>"$OUT/sheet.jsonl" <<'EOF'
import json, os, sys
name, count, t0, t1, rc, folder, args = sys.argv[1:]
files = [os.path.join(folder, f) for f in os.listdir(folder)]
wall = float(t1) - float(t0)
print(json.dumps({"run": name, "count": int(count), "exit_code": int(rc), "wall_s": round(wall, 2),
                  "sprites_per_s": round(int(count) / wall, 1), "pages": sum(f.endswith(".png") for f in files),
                  "bytes": sum(os.path.getsize(f) for f in files), "args": args}))
EOF
    tail -n 1 "$OUT/sheet.jsonl" | tee -a "$LOG"
    rm -rf "$dir"
}
if [[ $MODE == gpu ]]; then
    if [[ $ORT_CUDA == yes ]]; then
        sheet onnx-cuda --model "$WORK/m.onnx" --backend onnx --device cuda  # the unrolled graph (auto on CUDA)
        SM_ONNX_LOOP=device sheet onnx-cuda-steploop --model "$WORK/m.onnx" --backend onnx --device cuda
    else
        log "SKIPPED sm sheet --backend onnx --device cuda: no CUDAExecutionProvider"
    fi
    sheet torch-cuda-fp16 --backend torch --device cuda --fp16
    sheet torch-cuda-fp16-jobs1 --backend torch --device cuda --fp16 --jobs 1
else
    log "SKIPPED the CUDA sheets: CPU rehearsal (the same commands on --device cpu, --count $COUNT)"
    sheet onnx-cpu --model "$WORK/m.onnx" --backend onnx --device cpu
    SM_ONNX_LOOP=unrolled sheet onnx-cpu-unrolled --model "$WORK/m.onnx" --backend onnx --device cpu
    sheet onnx-cpu-jobs1 --model "$WORK/m.onnx" --backend onnx --device cpu --jobs 1
    sheet torch-cpu --backend torch --device cpu --steps 4
fi

# ---- 4b. the CPU side of a 100,000-sprite sheet on this machine's cores (bench/sheet_tail.py)
if [[ $MODE == gpu ]]; then
    TAIL_WORKERS=$(( $(nproc) > 2 ? $(nproc) - 1 : 2 ))  # one process's figures: bench/results/sheet_tail.md
    timeout 90 "$PY" bench/sheet_tail.py --count "$COUNT" --workers "$TAIL_WORKERS" --out "$OUT/sheet_tail" \
        >>"$LOG" 2>&1 || log "bench/sheet_tail.py failed or ran past 90 s (see the log)"
else
    "$PY" bench/sheet_tail.py --count 3000 --sample 512 --workers 1,2 --out "$OUT/sheet_tail" >>"$LOG" 2>&1 \
        || log "bench/sheet_tail.py failed (see the log)"
fi

# ---- 5. summary
"$PY" - "$OUT" "$MODE" "$ORT_CUDA" >"$OUT/summary.md" <<'EOF'
import json, pathlib, sys
out, mode, ort_cuda = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
lines = [f"# bench/gpu_check.sh ({mode})", "", "```", (out / "env.txt").read_text().strip(), "```", ""]
doc = json.loads((out / "onnx_gpu.json").read_text()) if (out / "onnx_gpu.json").is_file() else None
if doc:
    lines += ["Sampling, best sprites/s per variant (batch):", ""]
    lines += [f"- {k}: {v['sprites_per_s']:.0f} sprites/s (batch {v['batch']})" for k, v in doc.get("best", {}).items()]
else:
    lines += ["Sampling: no result (see gpu_check.log)."]
if ort_cuda != "yes":
    lines += ["", "onnxruntime on CUDA: SKIPPED (no CUDAExecutionProvider)." if mode == "gpu"
              else "CUDA parts: SKIPPED (CPU rehearsal)."]
lines += ["", "`sm sheet`, process start to files written:", "", "| run | sprites | wall (s) | sprites/s | pages | exit |",
          "| --- | ---: | ---: | ---: | ---: | ---: |"]
for row in map(json.loads, (out / "sheet.jsonl").read_text().splitlines()):
    lines.append(f"| {row['run']} | {row['count']} | {row['wall_s']} | {row['sprites_per_s']} | {row['pages']} "
                 f"| {row['exit_code']} |")
tail = out / "sheet_tail.md"
lines += ["", tail.read_text().strip() if tail.is_file() else "bench/sheet_tail.py: no result (see gpu_check.log)."]
print("\n".join(lines))
EOF
cat "$OUT/summary.md" | tee -a "$LOG"
