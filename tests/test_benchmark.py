"""benchmark.py --quick: every figure is measured and finite (no timing is asserted: the machine is shared)."""

from __future__ import annotations

import json
import math

import pytest

import torch

import benchmark
from pop2jazz import compute


def numbers(value):
    """Every number in a JSON-like value, depth first."""
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from numbers(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from numbers(item)


@pytest.mark.slow
def test_quick_benchmark_measures_every_figure(gtzan_mini, tmp_path, capsys):
    output = tmp_path / "benchmark.json"
    threads = torch.get_num_threads()
    try:  # one thread: two threads on a busy machine wait for each other far longer than they compute
        assert benchmark.main(["--quick", "--clips", str(gtzan_mini), "--json", str(output), "--device", "cpu",
                               "--threads", "1"]) == 0
    finally:
        torch.set_num_threads(threads)
    results = json.loads(output.read_text())
    assert all(math.isfinite(number) for number in numbers(results))

    convert, memory, inversion = results["convert"], results["memory"], results["inversion"]
    assert convert["generator"] == {"width": 8, "n_blocks": 2}
    assert 68 < convert["audio_seconds"] < 70  # the first 4 clips
    assert convert["windows"] == 16  # 5932 frames: 15 windows every 384 frames, and one ending at the last
    assert convert["real_time_factor"] > 0 and 0 < convert["fraction_of_bound"]
    assert memory["short_audio_seconds"] == 20.0
    # peaks (ru_maxrss) per process: importing torch alone passes 100 MB, and a short song's peak can be that of its
    # imports, so the two songs are compared by ratio, not one process's peak against the other's imports
    assert memory["peak_rss_mb_long"] >= memory["rss_after_imports_mb"] > 100
    assert memory["peak_rss_mb_short"] > 100 and 1 / 1.5 < memory["peak_rss_ratio"] < 1.5  # streamed: no growth
    # the source phase starts Griffin-Lim close to the answer; librosa's random phase does not
    assert inversion["source_phase_griffin_lim"]["spectral_convergence_db"] < inversion["librosa_griffinlim"][
        "spectral_convergence_db"] - 15
    assert abs(inversion["source_phase_griffin_lim"]["spectral_convergence_db"]
               - inversion["source_phase_librosa_stft"]["spectral_convergence_db"]) < 0.1
    assert results["preprocessing"]["songs"] == 20
    native = compute.native_bf16(torch.device("cpu"))
    assert results["machine"]["native_bf16"] is native
    precisions = ["float32", "bf16"] if native else ["float32"]  # an emulating CPU's bf16 is not worth timing
    assert [(run["model"], run["width"], run["batch_size"], run["precision"]) for run in results["training"]] == [
        (model, width, 1, precision) for model, width in (("tiny", 8), ("tinier", 4)) for precision in precisions]
    # where both are timed, side by side in one run, their ratio
    assert set(results["bf16_training_speedup"]) == ({"tiny", "tinier"} if native else set())
    assert all(ratio > 0 for ratio in results["bf16_training_speedup"].values())
    assert results["targets_met"] is None  # tiny models on short songs: no verdict on the targets
    table = capsys.readouterr().out
    assert "real_time_factor" in table and "peak RSS" in table and "it/s" in table
    assert ("bf16 / float32" in table) is native and ("bf16 training not timed" in table) is not native
    assert "smoke test" in table and "paper" not in table.lower()
    assert ">= 8x" not in table and not any(line.rstrip().endswith(("| yes", "| no")) for line in table.splitlines())
