#!/usr/bin/env bash
# The GPU session's device check for issue 8. NOT RUN YET: prepared on a CPU-only machine.
# Writes the whole log to $OUT/log (appends, so two calls on one warm machine keep one log).
#
# Prepare here (once, from the repository root; about 20 MB of wheels, DESIGN.md section 9):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl transformers==5.24.0 trl==1.16.0 datasets==5.2.0 pydantic==2.14.4 pydantic-core==2.50.5 \
#     annotated-types typing-inspection dill==0.4.0 multiprocess==0.70.18
# (peft, tensorboard, accelerate, torchvision are on the device already.)
#
# Run on the device, two calls of the device tool (15 minutes of device time hold both; the second
# reuses the model the first built if the machine is still warm, else builds it again, ~1 minute):
#   run(command="bash benchmarks/gpu_check.sh acceptance", carry=[".whl"], timeout_s=600)   # ~7-8 min
#   run(command="bash benchmarks/gpu_check.sh extras",     carry=[".whl"], timeout_s=400)   # ~3 min
# `bash benchmarks/gpu_check.sh` alone runs both parts in one go (over 10 minutes on one H200).
#
# acceptance: gpu_grpo_step.py with its defaults: 10 GRPO steps reflection off, then on, then
#   TRL-plain; attention "auto" = sdpa_padsafe text + sdpa vision. Exit 1 if any step is not finite.
# extras: (a) the control: plain sdpa on the same padded batch (expected: non-finite grad norm at
#   step 1, as in issue 8) and with one prompt per step (no padding; expected finite);
#   (b) HF rollout tokens/s at 16 / 64 / 256 sequences, dynamic vs static KV cache;
#   (c) AutoProcessor.from_pretrained on the checkpoint we wrote (torchvision is there).
# GPU_CHECK_CPU=1 runs the same on the CPU with the tiny model (a dry run of this script).
set -uo pipefail
PART=${1:-all}
OUT=${OUT:-/tmp/gpu_check_out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log") 2>&1
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
echo "=== gpu_check.sh $PART  $(date -u)  commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
$PY -c "import torch, transformers, trl; print('torch', torch.__version__, 'transformers', transformers.__version__, 'trl', trl.__version__)"
status=0

if [ "$PART" = acceptance ] || [ "$PART" = all ]; then
  echo "=== acceptance: gpu_grpo_step.py defaults"
  timeout $((560 * T)) $PY benchmarks/gpu_grpo_step.py $STEP --model-dir $MODEL --out "$OUT/gpu_grpo_step.json"
  rc=$?; echo "gpu_grpo_step rc=$rc (0: every step finite)"; [ $rc -ne 0 ] && status=1
fi

if [ "$PART" = extras ] || [ "$PART" = all ]; then
  echo "=== control: plain sdpa, 4 prompts (left-padded) then 1 prompt (no padding)"
  timeout $((150 * T)) $PY benchmarks/gpu_grpo_step.py $STEP --model-dir $MODEL --attn sdpa --runs ours-off --steps 2 \
    --out "$OUT/control_sdpa_padded.json"; echo "sdpa padded rc=$? (1: non-finite, the bug sdpa_padsafe removes)"
  timeout $((60 * T)) $PY benchmarks/gpu_grpo_step.py $STEP --model-dir $MODEL --attn sdpa --runs ours-off --steps 2 \
    --prompts 1 --out "$OUT/control_sdpa_1prompt.json"; echo "sdpa 1 prompt rc=$? (0: finite without padding)"

  echo "=== rollout throughput"
  timeout $((90 * T)) $PY benchmarks/bench_generation.py --model-dir $MODEL $GEN --sequences 16 64 256 \
    --cache dynamic static --out "$OUT/generation.json"; echo "bench_generation rc=$?"

  echo "=== AutoProcessor reads our checkpoint"
  timeout $((30 * T)) $PY - "$MODEL" <<'PY'
import sys
from transformers import AutoProcessor
p = AutoProcessor.from_pretrained(sys.argv[1])
print("AutoProcessor OK:", type(p).__name__, type(p.image_processor).__name__, type(p.video_processor).__name__)
PY
  echo "AutoProcessor rc=$?"
  $PY -c "import fastapi, uvicorn" 2>/dev/null && echo "transformers serve: fastapi/uvicorn present (serve $MODEL by hand)" \
    || echo "transformers serve: not tried (fastapi/uvicorn missing; carry them as wheels to try)"
fi
date -u
exit $status
