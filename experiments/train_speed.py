"""Which CPU levers pay for training: seconds per CycleGAN step of train.py's own step, variant by variant.

    uv run experiments/train_speed.py                          # CPU size 16x3: about 5 minutes on 2 cores
    uv run experiments/train_speed.py --width 64 --n-blocks 9 --steps 2 --no-compile   # the paper's size
    uv run experiments/train_speed.py --quick                  # tiny model, 1 step: checks the script works

Every variant builds fresh networks (train.build_cyclegan) and runs train.cyclegan_step on pop and jazz images of
the representation's shape [1, 1, n_bins, chunk_frames] (random values: speed does not depend on them), one
warm-up step, then --steps timed steps; all variants in one process, one after the other, so compare them only
on a machine doing nothing else. Variants: float32 and bf16 autocast (bf16 only where the CPU does it natively,
or with --emulated-bf16), each plain, with channels_last and on 1 thread against all cores; the faster precision
with torch.compile (its first step, the compilation, timed apart and amortised: after how many steps it has paid
for itself); and the DataLoader: seconds to load a batch of real
chunks (train.py's UnpairedChunks) with 0 and 2 worker processes, against the step time. Writes --json and
prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

import train  # noqa: E402
from pop2jazz import compute  # noqa: E402
from pop2jazz.commands import positive_int, run_command  # noqa: E402
from pop2jazz.dataset import ChunkFolder, UnpairedChunks  # noqa: E402
from pop2jazz.output_files import atomic_write_bytes, check_writable  # noqa: E402
from pop2jazz.spectrogram import Representation  # noqa: E402

NAMES = ("generator_ab", "generator_ba", "discriminator_a", "discriminator_b")


def time_variant(width: int, n_blocks: int, steps: int, bf16: bool, channels_last: bool = False,
                 compile: bool = False, threads: int | None = None) -> dict:
    """Seconds of the first step (warm-up; with compile, the compilation) and the mean of `steps` more."""
    threads_before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        compute.seed_everything(0)
        args = train.parse_args(["--width", str(width), "--n-blocks", str(n_blocks), "--pool-size", "50"])
        rep = Representation()
        device = torch.device("cpu")
        parts = train.build_cyclegan(train.new_model_config(args, rep), args, device)
        nets = dict(zip(NAMES, compute.training_forms([parts[name] for name in NAMES], device, compute.Ranks(),
                                                      channels_last, compile)))
        autocast = torch.autocast("cpu", torch.bfloat16, enabled=bf16)
        shape = (1, 1, rep.n_bins, rep.chunk_frames)
        memory = torch.channels_last if channels_last else torch.contiguous_format
        images = [(torch.rand(shape) * 2 - 1).contiguous(memory_format=memory) for _ in range(2)]
        start = time.perf_counter()
        train.cyclegan_step(nets, parts, *images, args, autocast)
        first = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(steps):
            train.cyclegan_step(nets, parts, *images, args, autocast)
        return {"first_step_seconds": first, "seconds_per_step": (time.perf_counter() - start) / steps,
                "threads": torch.get_num_threads()}
    finally:
        torch.set_num_threads(threads_before)


def time_loader(data: Path, workers: int, batches: int) -> float:
    """Seconds per batch of UnpairedChunks from `data`'s pop_train and jazz_train with `workers` processes, after
    the first batch (the workers' start)."""
    dataset = UnpairedChunks(ChunkFolder(data / "pop_train"), ChunkFolder(data / "jazz_train"), seed=0)
    loader = iter(DataLoader(dataset, 1, shuffle=False, num_workers=workers, drop_last=True))
    next(loader)
    start = time.perf_counter()
    count = 0
    for count, _ in enumerate(loader, 1):
        if count == batches:
            break
    return (time.perf_counter() - start) / max(count, 1)


def measure(args: argparse.Namespace) -> dict:
    """Every variant of the module docstring: the JSON-ready results."""
    compute.keep_freed_memory()  # as train.py does
    size = (args.width, args.n_blocks, args.steps)
    native = compute.native_bf16(torch.device("cpu"))
    precisions = (False, True) if native or args.emulated_bf16 else (False,)
    variants = {}
    for bf16 in precisions:
        name = "bf16" if bf16 else "float32"
        variants |= {name: {"bf16": bf16}, f"{name} + channels_last": {"bf16": bf16, "channels_last": True},
                     f"{name}, 1 thread": {"bf16": bf16, "threads": 1}}
    if args.compile:
        variants[f"{name} + torch.compile"] = {"bf16": bf16, "compile": True}
    results = {"machine": {"cpus": os.cpu_count(), "threads": torch.get_num_threads(), "torch": torch.__version__,
                           "native_bf16": native, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                           "load_average_before": os.getloadavg()},
               "width": args.width, "n_blocks": args.n_blocks, "steps": args.steps, "variants": {}}
    for name, options in variants.items():
        results["variants"][name] = time_variant(*size, **options)
        print(f"{name}: {results['variants'][name]['seconds_per_step']:.3f} s/step", flush=True)
    if args.data is not None:
        results["loader"] = {workers: time_loader(args.data, workers, 20) for workers in (0, 2)}
    results["machine"]["load_average_after"] = os.getloadavg()
    return results


def markdown(results: dict) -> str:
    """The results as a Markdown table, each variant against float32."""
    base = results["variants"]["float32"]["seconds_per_step"]
    machine = results["machine"]
    lines = [f"Training step of the {results['width']}x{results['n_blocks']} CycleGAN, batch 1, mean of "
             f"{results['steps']} steps after one warm-up; {machine['cpus']} CPUs, torch {machine['torch']}, "
             f"{machine['cpu_capability']}, native bf16: {'yes' if machine['native_bf16'] else 'no'}; load average "
             f"{machine['load_average_before'][0]:.1f} before, {machine['load_average_after'][0]:.1f} after.", "",
             "| variant | s/step | speed vs float32 | first step (s) |", "|---|---:|---:|---:|"]
    for name, value in results["variants"].items():
        lines.append(f"| {name} | {value['seconds_per_step']:.3f} | {base / value['seconds_per_step']:.2f}x | "
                     f"{value['first_step_seconds']:.1f} |")
    fastest = "bf16" if "bf16" in results["variants"] else "float32"  # the precision compile was tried in
    compiled, plain = results["variants"].get(f"{fastest} + torch.compile"), results["variants"][fastest]
    if compiled:
        saved = plain["seconds_per_step"] - compiled["seconds_per_step"]
        cost = compiled["first_step_seconds"] - plain["first_step_seconds"]
        lines += ["", f"torch.compile: {cost:.0f} s to compile; "
                  + (f"it pays for itself after {cost / saved:.0f} steps." if saved > 0 else
                     "no faster per step, so it never pays on this machine.")]
    if "loader" in results:
        lines += ["", "DataLoader, seconds per batch: " + ", ".join(
            f"{workers} workers {seconds * 1000:.1f} ms" for workers, seconds in results["loader"].items())
            + f" (a step: {plain['seconds_per_step'] * 1000:.0f} ms in {fastest})."]
    return "\n".join(lines + [""])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=positive_int, default=16, help="generator width (default: 16)")
    parser.add_argument("--n-blocks", type=positive_int, default=3, help="residual blocks (default: 3)")
    parser.add_argument("--steps", type=positive_int, default=10, help="timed steps per variant (default: 10)")
    parser.add_argument("--data", type=Path, default=None, help="a preprocessed dataset (pop_train/, jazz_train/) "
                        "for the DataLoader figures (default: none, not measured)")
    parser.add_argument("--no-compile", dest="compile", action="store_false", help="leave out torch.compile "
                        "(minutes of compilation)")
    parser.add_argument("--json", type=Path, default=Path("samples/train_speed.json"),
                        help="default: samples/train_speed.json")
    parser.add_argument("--emulated-bf16", action="store_true", help="time bf16 even on a CPU without native "
                        "bf16, where it is emulated (slow: minutes a step at the CPU size on AVX2)")
    parser.add_argument("--quick", action="store_true", help="width 4, 1 block, 1 step, no compile")
    args = parser.parse_args(argv)
    if args.quick:
        args.width, args.n_blocks, args.steps, args.compile = 4, 1, 1, False
    return args


def experiment(args: argparse.Namespace) -> int:
    check_writable(args.json.parent, how="pass --json with a writable place")
    results = measure(args)
    atomic_write_bytes(args.json, json.dumps(results, indent=2).encode())
    text = markdown(results)
    atomic_write_bytes(args.json.with_suffix(".md"), text.encode())
    print(f"\n{text}\nwritten to {args.json} and {args.json.with_suffix('.md')}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: 0 when measured, 1 without a writable --json place."""
    return run_command(experiment, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
