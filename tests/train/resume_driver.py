"""Runs `safer-vlm train` in a child process for the resume tests, with two test-only probes:

- `--kill-at STEP`: the process SIGKILLs itself when step STEP begins (so every checkpoint up to
  STEP-1 is complete and nothing after it is), a real kill at a reproducible point;
- `--dump STEP:PATH` (repeatable): the weights the policy holds when the optimizer step after STEP
  begins (after STEP steps) are written to PATH (safetensors, keyed like `model.state_dict()`).

Usage: python -m tests.train.resume_driver [--kill-at N] [--dump STEP:PATH ...] -- <train args...>
"""

from __future__ import annotations

import argparse
import os
import signal
import sys


def main(argv: list[str]) -> None:
    split = argv.index("--")
    parser = argparse.ArgumentParser()
    parser.add_argument("--kill-at", type=int)
    parser.add_argument("--dump", action="append", default=[])
    probe = parser.parse_args(argv[:split])
    dumps = {int(step): path for step, path in (d.split(":", 1) for d in probe.dump)}

    from safer_vlm.train import trl_adapter

    original = trl_adapter.step_callback

    def patched(on_step_end):
        progress = type(original(on_step_end))  # the real progress callback, with the probes added

        class _Probe(progress):
            def on_step_begin(self, args, state, control, model=None, **kwargs):
                if state.global_step in dumps:
                    from safetensors.torch import save_file

                    weights = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
                    save_file(weights, dumps[state.global_step])
                if probe.kill_at is not None and state.global_step + 1 == probe.kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)

        return _Probe()

    trl_adapter.step_callback = patched
    from safer_vlm.cli import main as cli_main

    cli_main(argv[split + 1 :])


if __name__ == "__main__":
    main(sys.argv[1:])
