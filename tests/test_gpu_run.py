"""experiments/gpu_run.sh, the GPU recipe, in its CPU dry run: every step runs and its outputs land in one folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pop2jazz import compute
from pop2jazz.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "experiments" / "gpu_run.sh"


@pytest.mark.slow
def test_the_gpu_recipe_runs_end_to_end_on_the_cpu(gtzan_mini, tmp_path):
    """A 0.2-minute budget (the documented dry run has 1): the checkpoint stops after the epoch that spent it,
    short of its 200 epochs, in the CPU's default precision; the report is beside it. BENCHMARK=0 leaves out the
    quick benchmark, which tests/test_benchmark.py runs with the same options."""
    output = tmp_path / "run"
    environment = {**os.environ, "PYTHON": sys.executable, "OUTPUT": str(output), "MINUTES": "0.2",
                   "POP2JAZZ_CLIPS": str(gtzan_mini), "OMP_NUM_THREADS": "1",
                   "BENCHMARK": "0"}
    run = subprocess.run(["bash", str(SCRIPT), "--dry-run"], cwd=ROOT, env=environment, capture_output=True,
                         text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "--max-minutes 0.2 passed after epoch" in run.stdout
    state = load_checkpoint(output / "latest.pt")
    assert 1 <= state["epoch"] < 200 and state["args"]["max_minutes"] == 0.2
    # the CPU's default (bf16 only where it is native); the GPU run asks for bf16
    assert state["args"]["bf16"] is compute.native_bf16(torch.device("cpu"))
    assert (output / "generators.pt").stat().st_size > 1000
    figures = json.loads((output / "report" / "figures.json").read_text())
    assert 0 <= figures["tagger"]["rows"]["converted"]["jazz_probability"] <= 1
    assert not (output / "benchmark.json").exists() and "== benchmarking" not in run.stdout
    assert "done in" in run.stdout


def test_the_gpu_recipe_refuses_to_run_over_an_earlier_run(tmp_path):
    (tmp_path / "latest.pt").write_bytes(b"an earlier run")
    run = subprocess.run(["bash", str(SCRIPT), "--dry-run"], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHON": sys.executable, "OUTPUT": str(tmp_path)})
    assert run.returncode == 1 and "already holds a run" in run.stderr
    assert (tmp_path / "latest.pt").read_bytes() == b"an earlier run"


def test_the_gpu_recipe_explains_itself_and_refuses_unknown_options():
    shown = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True)
    assert shown.returncode == 0 and "--dry-run" in shown.stdout and "set -e" not in shown.stdout
    refused = subprocess.run(["bash", str(SCRIPT), "--fast"], capture_output=True, text=True)
    assert refused.returncode == 2 and "unknown option --fast" in refused.stderr
    wrong = subprocess.run(["bash", str(SCRIPT), "--dry-run"], capture_output=True, text=True,
                           env={**os.environ, "BENCHMARK": "no"})
    assert wrong.returncode == 2 and "BENCHMARK=no" in wrong.stderr
