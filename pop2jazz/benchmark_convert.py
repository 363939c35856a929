"""One conversion for benchmark.py, in a process of its own, so that its peak RSS is the conversion's alone.

    python -m pop2jazz.benchmark_convert '{"song": ..., "output": ..., "generator": [64, 9], "n_iter": 32,
                                          "batch_size": 4, "device": "cpu", "time_forward": true, "threads": 2,
                                          "bf16": false, "compile": false}'

Prints one JSON line: audio_seconds, seconds (wall clock of conversion.convert_file), peak_rss_mb,
rss_after_imports_mb, windows and, with time_forward, first_call_seconds (kernel choice, allocation and, with
compile, compilation) and forward_seconds_per_window (the least of 2 timed generator calls on batch_size
windows). bf16 and compile as convert.py's flags.
It imports what convert.py imports and no more, and sets up the process as convert.py does.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import torch

from model_cyclegan import init_weights
from pop2jazz.checkpoint import build_generator
from pop2jazz.compute import keep_freed_memory
from pop2jazz.conversion import convert_file, run_generator, window_starts
from pop2jazz.spectrogram import Representation


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB (getrusage gives KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def convert_in_this_process(config: dict) -> dict:
    """Convert config["song"] with a random-weight generator of config["generator"] = (width, n_blocks): figures."""
    keep_freed_memory()  # as convert.py's main does
    torch.manual_seed(0)
    torch.set_num_threads(config["threads"])
    rep, device = Representation(), torch.device(config["device"])
    width, n_blocks = config["generator"]
    generator = init_weights(build_generator({"generator": "resnet", "width": width, "n_blocks": n_blocks}))
    generator = generator.to(device).eval()
    generator = torch.compile(generator, dynamic=True) if config["compile"] else generator
    result = {"rss_after_imports_mb": peak_rss_mb()}
    if config["time_forward"]:
        windows = torch.rand(config["batch_size"], rep.n_bins, rep.chunk_frames) * 2 - 1
        times = []
        for _ in range(3):
            start = time.perf_counter()
            run_generator(generator, windows, config["bf16"])  # returns on the CPU: CUDA work is finished
            times.append(time.perf_counter() - start)
        result["first_call_seconds"] = times[0]
        result["forward_seconds_per_window"] = min(times[1:]) / config["batch_size"]
    start = time.perf_counter()
    seconds, _ = convert_file(generator, Path(config["song"]), Path(config["output"]), rep, config["n_iter"],
                              batch_size=config["batch_size"], bf16=config["bf16"],
                              provenance={"tool": "benchmark_convert.py"})
    result.update(audio_seconds=seconds, seconds=time.perf_counter() - start,
                  peak_rss_mb=peak_rss_mb())
    frames = 1 + max(round(seconds * rep.sample_rate), rep.chunk_samples) // rep.hop_length
    result["windows"] = len(window_starts(frames, rep.chunk_frames, 0.25))
    return result


if __name__ == "__main__":
    print(json.dumps(convert_in_this_process(json.loads(sys.argv[1]))))
