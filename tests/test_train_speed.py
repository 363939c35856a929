"""train.py's speed options on real chunks: bf16 autocast (--bf16 / --no-bf16 and the CPU default), --max-minutes,
and experiments/train_speed.py."""

from __future__ import annotations

import json
import math
import sys

import pytest
import torch

import train
from pop2jazz import compute
from pop2jazz.checkpoint import load_checkpoint
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "experiments"))
import train_speed  # noqa: E402

TINY = ["--width", "4", "--n-blocks", "1", "--pool-size", "2", "--griffin-lim-iters", "1", "--seed", "3"]


def run(dataset, folder, *options) -> dict:
    assert train.main(["--data", str(dataset), "--checkpoint-dir", str(folder / "c"), "--samples-dir",
                       str(folder / "s"), *TINY, *options]) == 0
    return load_checkpoint(folder / "c" / "latest.pt")


def test_bf16_is_a_flag_both_ways_on_by_default_where_the_cpu_does_it_natively_as_torch_reports(monkeypatch):
    assert train.parse_args([]).bf16 is None
    assert train.parse_args(["--bf16"]).bf16 is True and train.parse_args(["--no-bf16"]).bf16 is False
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert compute.use_bf16(False, cuda) is True and compute.native_bf16(cuda)  # CUDA: always
    assert "ignored on CUDA" in compute.bf16_note(False, True, cuda)  # and --no-bf16 there says so
    assert compute.bf16_note(None, True, cuda) is None and compute.bf16_note(True, True, cuda) is None
    for avx512_bf16, amx, native in ((True, False, True), (False, True, True), (False, False, False)):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda value=avx512_bf16: value)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda value=amx: value)
        assert compute.native_bf16(cpu) is native
        assert compute.use_bf16(None, cpu) is native  # the default: bf16 only where it is not emulated
        assert compute.use_bf16(True, cpu) is True and compute.use_bf16(False, cpu) is False
        assert (compute.bf16_note(True, True, cpu) is None) is native  # asked for where emulated: a note
        assert compute.bf16_note(False, False, cpu) is None


def test_the_help_says_when_bf16_is_on(capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--bf16, --no-bf16" in text and "On the CPU on by default where it does bf16 natively" in text
    assert "AVX512-BF16 or AMX" in text and "emulated and far slower" in text
    assert "--max-minutes" in text


def test_bf16_training_moves_the_losses_a_little_and_keeps_everything_float32(small_chunks, tmp_path, capsys):
    """One step each way from the same seed on 128-frame chunks (small: a CPU without native bf16 emulates it,
    slowly): the losses differ (autocast is on) by under 5 %, and the weights, the optimiser state and the image
    pools the checkpoint keeps are float32. Where bf16 is emulated, the run says so."""
    float32 = run(small_chunks, tmp_path / "f", "--no-bf16", "--epochs", "1", "--steps-per-epoch", "1")
    bf16 = run(small_chunks, tmp_path / "b", "--bf16", "--epochs", "1", "--steps-per-epoch", "1")
    emulated = not compute.native_bf16(torch.device("cpu"))
    assert ("does not do bf16 natively" in capsys.readouterr().out) is emulated
    assert float32["args"]["bf16"] is False and bf16["args"]["bf16"] is True
    for name in train.LOSSES:
        low, high = float32["history"][0][name], bf16["history"][0][name]
        assert math.isfinite(high) and low != high and abs(high - low) <= 0.05 * abs(low) + 1e-3, name
    weights = [*bf16["generator_ab"].values(), *bf16["discriminator_b"].values()]
    assert all(tensor.dtype == torch.float32 for tensor in weights if tensor.is_floating_point())
    moments = [value for state in bf16["optimizer_g"]["state"].values() for value in state.values()
               if isinstance(value, torch.Tensor) and value.is_floating_point()]
    assert moments and all(value.dtype == torch.float32 for value in moments)
    pooled = bf16["image_pool_b"]["images"]
    assert pooled and all(image.dtype == torch.float32 for image in pooled)


def test_max_minutes_stops_after_the_epoch_that_spent_it_and_resume_carries_on(small_chunks, tmp_path, capsys):
    state = run(small_chunks, tmp_path, "--epochs", "4", "--steps-per-epoch", "1", "--max-minutes", "0.0001")
    assert state["epoch"] == 1
    assert "--max-minutes 0.0001 passed after epoch 1; carry on with --resume" in capsys.readouterr().out
    state = run(small_chunks, tmp_path, "--epochs", "4", "--steps-per-epoch", "1", "--resume")
    assert state["epoch"] == 4 and len(state["history"]) == 4


@pytest.mark.slow
def test_train_speed_measures_every_variant(dataset, tmp_path):
    output = tmp_path / "speed.json"
    assert train_speed.main(["--quick", "--data", str(dataset), "--json", str(output)]) == 0
    results = json.loads(output.read_text())
    precisions = ("float32", "bf16") if compute.native_bf16(torch.device("cpu")) else ("float32",)
    assert set(results["variants"]) == {f"{name}{variant}" for name in precisions
                                        for variant in ("", " + channels_last", ", 1 thread")}
    assert all(value["seconds_per_step"] > 0 for value in results["variants"].values())
    assert results["variants"]["float32, 1 thread"]["threads"] == 1
    assert set(results["loader"]) == {"0", "2"} and all(value > 0 for value in results["loader"].values())
    assert "| float32 + channels_last |" in output.with_suffix(".md").read_text()
