"""train.py under torchrun: 2 CPU processes with gloo, DistributedDataParallel on a tiny model."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, TINY_MODEL
from pop2jazz.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow  # two real torchrun processes

NETWORKS = ("generator_ab", "generator_ba", "discriminator_a", "discriminator_b")


def test_two_ranks_train_on_their_shards_and_end_with_identical_weights(dataset, tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(ROOT / "tests" / "ddp_worker.py"), str(tmp_path), "--data", str(dataset), "--device", "cpu",
               "--checkpoint-dir", str(tmp_path / "checkpoints"), "--samples-dir", str(tmp_path / "samples"),
               "--epochs", "1", "--steps-per-epoch", "3", "--pool-size", "2", *TINY_MODEL]
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    run = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{rank}.pt", weights_only=True) for rank in (0, 1)]
    assert [rank["code"] for rank in ranks] == [0, 0]

    # each rank read its own share of the epoch's pairs ...
    assert sorted(ranks[0]["indices"]) == [0, 2, 4] and sorted(ranks[1]["indices"]) == [1, 3, 5]
    # ... yet both end with the same weights, bit for bit, which moved in training and which rank 0 saved
    checkpoint = load_checkpoint(tmp_path / "checkpoints" / "latest.pt")
    for index, name in enumerate(NETWORKS):
        before, after, other = (ranks[0]["initial"][index], ranks[0]["weights"][index], ranks[1]["weights"][index])
        assert after.keys() == other.keys() == checkpoint[name].keys()
        for key in after:
            assert torch.equal(after[key], other[key]), f"{name}.{key} differs between the ranks"
            assert torch.equal(after[key], checkpoint[name][key]), f"{name}.{key}: the checkpoint is not rank 0's"
        assert any(not torch.equal(before[key], after[key]) for key in after), f"{name} did not train"
    # rank 0 alone wrote the checkpoint, the sample and the loss log, and printed
    assert sorted(path.name for path in (tmp_path / "checkpoints").iterdir()) == ["generators.pt", "latest.pt"]
    assert sorted(path.name for path in (tmp_path / "samples").iterdir()) == [
        "epoch_001.png", "epoch_001.wav", "index.html", "losses.csv", "losses.png"]
    assert run.stdout.count("done:") == 1 and "x 2 processes" in run.stdout
