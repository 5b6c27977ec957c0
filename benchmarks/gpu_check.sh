#!/usr/bin/env bash
# The GPU session's one device check (issue 8), written to run unattended in under 10 minutes on one
# H200 and to keep the whole log in $OUT/log. NOT RUN YET: prepared on a CPU-only machine.
#
# Prepare here (once, from the repository root; about 20 MB of wheels, DESIGN.md section 9):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl transformers==5.24.0 trl==1.16.0 datasets==5.2.0 pydantic==2.14.4 pydantic-core==2.50.5 \
#     annotated-types typing-inspection dill==0.4.0 multiprocess==0.70.18 peft==0.21.2
# Run on the device (device tool `run`, carry [".whl"], timeout_s 600):
#   bash benchmarks/gpu_check.sh
# What it does, each part under its own time limit so a slow part cannot eat the rest:
#   1. the acceptance check: gpu_grpo_step.py with its defaults (10 steps reflection off, then on,
#      then TRL-plain; attention "auto" = sdpa_padsafe text + sdpa vision); exit 1 if any step is not finite
#   2. the control: plain sdpa on the same batch (expected: non-finite grad norm at step 1, as in
#      issue 8), and plain sdpa with one prompt per step (no padding; expected finite)
#   3. HF rollout throughput at 16 / 64 / 256 sequences, dynamic vs static KV cache
#   4. AutoProcessor.from_pretrained on a checkpoint we wrote (torchvision is there)
# GPU_CHECK_CPU=1 bash benchmarks/gpu_check.sh runs the same sequence on the CPU with the tiny model
# (a dry run of the script itself; its figures mean nothing for the GPU).
set -uo pipefail
OUT=${OUT:-/tmp/gpu_check_out}
mkdir -p "$OUT"
LOG="$OUT/log"
exec > >(tee -a "$LOG") 2>&1
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD TRL_EXPERIMENTAL_SILENCE=1 TOKENIZERS_PARALLELISM=false
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site:$PYTHONPATH || { echo "wheel install failed"; exit 3; }
fi
PY=${PYTHON:-python3}
if [ "${GPU_CHECK_CPU:-0}" = 1 ]; then
  MODEL=/tmp/tiny_gpu_check; STEP="--tiny"; GEN="--device cpu --shape tiny"; T=4   # time limits x4 on 2 cores
else
  MODEL=/tmp/qwen3b_random; STEP=""; GEN="--device cuda --shape 3b"; T=1
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
fi
date -u
$PY -c "import torch, transformers, trl; print('torch', torch.__version__, 'transformers', transformers.__version__, 'trl', trl.__version__)"
status=0

echo "=== 1. acceptance: gpu_grpo_step.py defaults"
timeout $((400 * T)) $PY benchmarks/gpu_grpo_step.py $STEP --model-dir $MODEL --out "$OUT/gpu_grpo_step.json"
rc=$?; echo "gpu_grpo_step rc=$rc"; [ $rc -ne 0 ] && status=1

echo "=== 2. control: plain sdpa, 4 prompts (padded) then 1 prompt (no padding)"
timeout $((45 * T)) $PY benchmarks/gpu_grpo_step.py $STEP --model-dir $MODEL --attn sdpa --runs ours-off --steps 2 \
  --out "$OUT/control_sdpa_padded.json"; echo "sdpa padded rc=$? (1 = non-finite, the bug this issue fixes)"
timeout $((40 * T)) $PY benchmarks/gpu_grpo_step.py $STEP --model-dir $MODEL --attn sdpa --runs ours-off --steps 2 --prompts 1 \
  --out "$OUT/control_sdpa_1prompt.json"; echo "sdpa 1 prompt rc=$?"

echo "=== 3. rollout throughput"
timeout $((60 * T)) $PY benchmarks/bench_generation.py --model-dir $MODEL $GEN --sequences 16 64 256 \
  --cache dynamic static --out "$OUT/generation.json"; echo "bench_generation rc=$?"

echo "=== 4. AutoProcessor reads our checkpoint"
timeout $((20 * T)) $PY - "$MODEL" <<'PY'
import sys
from transformers import AutoProcessor
p = AutoProcessor.from_pretrained(sys.argv[1])
print("AutoProcessor OK:", type(p).__name__, type(p.image_processor).__name__, type(p.video_processor).__name__)
PY
echo "AutoProcessor rc=$?"
$PY -c "import fastapi, uvicorn" 2>/dev/null && echo "transformers serve: deps present (serve $MODEL by hand)" \
  || echo "transformers serve: skipped (fastapi/uvicorn not on the device; carry them as wheels to try)"
date -u
exit $status
