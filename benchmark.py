"""Measure conversion, memory, inversion, preprocessing and training speed on this machine: a table and JSON.

    uv run benchmark.py                  # paper-size generator on a 6-minute song: about 5 minutes on 2 CPU cores
    uv run benchmark.py --quick          # tiny models, short songs: a smoke test of the benchmark itself, no verdict
    uv run benchmark.py --bf16 --compile          # conversion as with convert.py --bf16 --compile
    uv run benchmark.py --device cuda --train-batch-sizes 1,4,8 --compile --channels-last

The song is the 20 clips of --clips ($POP2JAZZ_CLIPS, else the shared GTZAN excerpts) concatenated (about 6
minutes); generators have random weights, since speed does not depend on their values. Figures, with the targets
for 2 CPU cores (--quick: tiny models on short songs, a smoke test without targets or verdicts):
- convert real_time_factor: audio seconds per wall-clock second of conversion.convert_file, and the generator-only
  bound: audio seconds / (forward seconds per window x windows), timed in the same process. >= 8x, >= 80 %.
- memory: peak RSS of that conversion vs one of the first 30 s, each in a fresh process. Ratio <= 1.5.
- inversion: spectral_convergence (dB) and seconds of librosa.griffinlim (random phase) and of our griffin_lim
  from the source phase (its STFT in torch, and in librosa for comparison), 32 iterations. >= 15 dB better, no
  slower.
- preprocessing: audio seconds per wall second of audio_preprocessing over the 20 clips. >= 300x.
- training: iterations/s of train.py (its second epoch, warm), paper-size and CPU-size models, on the CPU in
  float32 and under bf16 autocast side by side, and their ratio: bf16 >= 1.7x float32 at the CPU size. Only on a
  CPU with native bf16 (AVX512-BF16 or AMX): elsewhere bf16 is emulated, far slower, and not timed.
Timings on a shared machine vary with the load, which the JSON records before and after.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
import torch

from pop2jazz import preprocessing  # timed in this process: a child's start-up would swamp its 0.3 s of work
from pop2jazz.checkpoint import load_checkpoint
from pop2jazz.commands import positive_int, positive_int_list, run_child, run_command
from pop2jazz.compute import native_bf16, pick_device
from pop2jazz.dataset import example_clips
from pop2jazz.errors import ChildFailed, MissingFileError
from pop2jazz.metrics import inversion_quality, invert
from pop2jazz.output_files import atomic_write_bytes, check_writable
from pop2jazz.spectrogram import Representation, image_to_magnitude, load_audio, magnitude_to_image, stft

CLIPS = example_clips()
# the two training models are named for what they are: the paper's and the CPU demo's, or in --quick two tiny ones
FULL = {"generator": (64, 9), "cpu_generator": (16, 3), "models": ("paper", "cpu"), "clips": 20,
        "short_seconds": 30.0, "n_iter": 32, "train_steps": {"paper": 2, "cpu": 10}, "inversion_seconds": 30.0,
        "repeats": 3}
QUICK = {"generator": (8, 2), "cpu_generator": (4, 1), "models": ("tiny", "tinier"), "clips": 4,
         "short_seconds": 20.0, "n_iter": 4, "train_steps": {"tiny": 1, "tinier": 1}, "inversion_seconds": 5.0,
         "repeats": 1}  # 20 s: still 5 windows, full batches
MODEL_LABELS = {"paper": "paper-size", "cpu": "CPU-size", "tiny": "smoke-test", "tinier": "smoke-test"}
TARGETS = {"real_time_factor": 8.0, "fraction_of_bound": 0.8, "peak_rss_ratio": 1.5, "improvement_db": 15.0,
           "throughput_real_time": 300.0, "bf16_training_speedup": 1.7}
PRECISIONS = {"float32": "--no-bf16", "bf16": "--bf16"}


def make_songs(clips: Path, count: int, short_seconds: float, folder: Path) -> tuple[Path, Path]:
    """The first `count` clips (pop, then jazz) concatenated into folder/long.wav, and its first `short_seconds`
    into folder/short.wav: 16-bit mono WAVs at the representation's rate."""
    rep = Representation()
    files = sorted((clips / "pop").glob("*.wav")) + sorted((clips / "jazz").glob("*.wav"))
    audio = np.concatenate([load_audio(path, rep.sample_rate) for path in files[:count]])
    sf.write(folder / "long.wav", audio, rep.sample_rate, subtype="PCM_16")
    sf.write(folder / "short.wav", audio[: int(short_seconds * rep.sample_rate)], rep.sample_rate, subtype="PCM_16")
    return folder / "long.wav", folder / "short.wav"


def convert_in_child(song: Path, output: Path, generator: tuple[int, int], n_iter: int, batch_size: int,
                     device: str, time_forward: bool, bf16: bool = False, compile: bool = False) -> dict:
    """pop2jazz/benchmark_convert.py in a fresh Python, so that its peak RSS is this conversion's alone: its
    figures."""
    config = {"song": str(song), "output": str(output), "generator": generator, "n_iter": n_iter,
              "batch_size": batch_size, "device": device, "time_forward": time_forward,
              "threads": torch.get_num_threads(), "bf16": bf16, "compile": compile}
    run = run_child([sys.executable, "-m", "pop2jazz.benchmark_convert", json.dumps(config)],
                    cwd=Path(__file__).resolve().parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if run.returncode != 0:
        raise ChildFailed(f"conversion of {song} failed:\n{run.stderr[-3000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def griffin_lim_librosa_stft(magnitude: np.ndarray, init_phase: np.ndarray, n_iter: int, length: int,
                             rep: Representation, momentum: float = 0.99) -> np.ndarray:
    """spectrogram.griffin_lim with librosa's STFT and iSTFT (numpy) in place of torch's, for timing both."""
    options = {"hop_length": rep.hop_length, "window": "hann", "center": True}
    angles = np.exp(1j * init_phase).astype(np.complex64)
    previous = np.zeros_like(angles)
    for _ in range(n_iter):
        rebuilt = librosa.stft(librosa.istft(magnitude * angles, n_fft=rep.n_fft, length=length, **options),
                               n_fft=rep.n_fft, pad_mode="constant", **options)
        accelerated = rebuilt - (momentum / (1 + momentum)) * previous
        previous = rebuilt
        angles = accelerated / (np.abs(accelerated) + 1e-16)
    return librosa.istft(magnitude * angles, n_fft=rep.n_fft, length=length, **options)


def measure_inversion(song: Path, seconds: float, n_iter: int, repeats: int = 3) -> dict:
    """Spectral convergence and time of three Griffin-Lims on the representation's magnitude of a song excerpt:
    librosa.griffinlim (random phase), our griffin_lim from the source phase, and the same with librosa's STFT."""
    rep = Representation()
    audio = torch.from_numpy(load_audio(song)[: int(seconds * rep.sample_rate)])
    spectrum = stft(audio, rep)
    magnitude = image_to_magnitude(magnitude_to_image(spectrum.abs(), rep), rep)  # what conversion inverts
    phase = spectrum.angle()
    librosa_stft = {"source_phase_librosa_stft": lambda: griffin_lim_librosa_stft(
        magnitude.numpy(), phase.numpy(), n_iter, len(audio), rep)}
    inversions = invert(magnitude, phase, len(audio), rep, n_iter, seed=0, repeats=repeats, extra=librosa_stft)
    del inversions["source_phase"]  # the phase alone, without iterations: evaluate.py's concern, not speed
    result = {"audio_seconds": len(audio) / rep.sample_rate, "n_iter": n_iter,
              **inversion_quality(magnitude, inversions, rep)}
    result["improvement_db"] = (result["librosa_griffinlim"]["spectral_convergence_db"]
                                - result["source_phase_griffin_lim"]["spectral_convergence_db"])
    return result


def measure_preprocessing(clips: Path, output: Path) -> dict:
    """audio_preprocessing over the clips with one worker per core: audio seconds per wall-clock second."""
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        summary = preprocessing.preprocess({"pop": clips / "pop", "jazz": clips / "jazz"}, output,
                                                 Representation(), workers=os.cpu_count() or 1)
    elapsed = time.perf_counter() - start
    audio_seconds = sum(entry["seconds"] for entry in summary.values())
    return {"songs": sum(entry["files_read"] for entry in summary.values()), "audio_seconds": audio_seconds,
            "seconds": elapsed, "throughput_real_time": audio_seconds / elapsed}


def measure_training(data: Path, folder: Path, generator: tuple[int, int], batch_size: int, steps: int,
                     device: str, extra: list[str]) -> dict:
    """train.py, in a child process, for 2 epochs of `steps` steps; iterations/s of the second, warm epoch (from
    its checkpoint's history)."""
    width, n_blocks = generator
    arguments = ["--data", str(data), "--checkpoint-dir", str(folder / "checkpoints"), "--samples-dir",
                 str(folder / "samples"), "--epochs", "2", "--steps-per-epoch", str(steps), "--width", str(width),
                 "--n-blocks", str(n_blocks), "--batch-size", str(batch_size), "--device", device, *extra]
    threads = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}  # as many as this process uses
    run = run_child([sys.executable, str(Path(__file__).with_name("train.py")), *arguments],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=threads)
    if run.returncode != 0:
        raise ChildFailed(f"train.py {' '.join(arguments)} failed:\n{run.stderr[-3000:]}")
    seconds = load_checkpoint(folder / "checkpoints" / "latest.pt")["history"][-1]["seconds"]
    return {"width": width, "n_blocks": n_blocks, "batch_size": batch_size, "steps": steps,
            "iterations_per_second": steps / seconds, "seconds_per_iteration": seconds / steps}


def bf16_speedups(training: list[dict]) -> dict[str, float]:
    """Per model ("paper", "cpu", ...): bf16 iterations/s over float32 iterations/s at batch size 1, where both
    were measured."""
    speed = {(run["model"], run["precision"]): run["iterations_per_second"] for run in training
             if run["batch_size"] == 1}
    return {model: speed[model, "bf16"] / speed[model, "float32"] for model, precision in speed
            if precision == "float32" and (model, "bf16") in speed}


def measure_conversion(long: Path, short: Path, folder: Path, generator: tuple[int, int], n_iter: int,
                       batch_size: int, device: str, bf16: bool, compile: bool) -> tuple[dict, dict]:
    """(convert figures of the long song, memory figures of long vs short), each conversion in a fresh process."""
    runs = {name: convert_in_child(song, folder / f"{name}_converted.wav", generator, n_iter, batch_size, device,
                                   name == "long", bf16, compile) for name, song in (("long", long), ("short", short))}
    long_run = runs["long"]
    bound_seconds = long_run["forward_seconds_per_window"] * long_run["windows"]
    convert = {"generator": {"width": generator[0], "n_blocks": generator[1]}, "batch_size": batch_size,
               "bf16": bf16, "compile": compile, "first_call_seconds": long_run["first_call_seconds"],
               "griffin_lim_iters": n_iter, "audio_seconds": long_run["audio_seconds"], "seconds": long_run["seconds"],
               "real_time_factor": long_run["audio_seconds"] / long_run["seconds"], "windows": long_run["windows"],
               "forward_seconds_per_window": long_run["forward_seconds_per_window"],
               "generator_bound_real_time_factor": long_run["audio_seconds"] / bound_seconds,
               "fraction_of_bound": bound_seconds / long_run["seconds"]}
    memory = {"long_audio_seconds": long_run["audio_seconds"], "short_audio_seconds": runs["short"]["audio_seconds"],
              "peak_rss_mb_long": long_run["peak_rss_mb"], "peak_rss_mb_short": runs["short"]["peak_rss_mb"],
              "peak_rss_ratio": long_run["peak_rss_mb"] / runs["short"]["peak_rss_mb"],
              "peak_rss_growth_mb": long_run["peak_rss_mb"] - runs["short"]["peak_rss_mb"],
              "rss_after_imports_mb": long_run["rss_after_imports_mb"]}
    return convert, memory


def run_benchmark(quick: bool, clips: Path, device: str, batch_size: int, train_batch_sizes: list[int],
                  bf16: bool = False, compile: bool = False, channels_last: bool = False) -> dict:
    """Every measurement, in a temporary folder: the JSON-ready results with the targets met."""
    settings = QUICK if quick else FULL
    results = {"machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "device": device,
                           "torch": torch.__version__, "quick": quick, "load_average_before": os.getloadavg()}}
    with tempfile.TemporaryDirectory(prefix="benchmark_") as temporary:
        folder = Path(temporary)
        long, short = make_songs(clips, settings["clips"], settings["short_seconds"], folder)
        results["convert"], results["memory"] = measure_conversion(
            long, short, folder, settings["generator"], settings["n_iter"], batch_size, device, bf16, compile)
        results["inversion"] = measure_inversion(long, settings["inversion_seconds"], 32, settings["repeats"])
        results["preprocessing"] = measure_preprocessing(clips, folder / "data")
        shutil.rmtree(folder / "data" / "pop_val")  # no held-out song: train.py then writes no sample WAVs
        results["training"] = []
        train_extra = [flag for flag, on in (("--compile", compile), ("--channels-last", channels_last)) if on]
        # CUDA trains in bf16 always; a CPU with native bf16 in both precisions, one after the other, model by
        # model; a CPU that emulates bf16 (200x slower convolutions on AVX2) in float32 alone
        native = native_bf16(torch.device(device))
        precisions = ["bf16"] if device.startswith("cuda") else list(PRECISIONS) if native else ["float32"]
        big, small = settings["models"]
        for name, generator, sizes in ((big, settings["generator"], train_batch_sizes),
                                       (small, settings["cpu_generator"], [1])):
            for size in sizes:
                for precision in precisions if size == 1 else precisions[-1:]:
                    results["training"].append({"model": name, "precision": precision, **measure_training(
                        folder / "data", folder / f"train_{name}_{size}_{precision}", generator, size,
                        settings["train_steps"][name], device, [*train_extra, PRECISIONS[precision]])})
        results["bf16_training_speedup"] = bf16_speedups(results["training"])
    results["machine"]["load_average_after"] = os.getloadavg()
    results["machine"]["native_bf16"] = native
    results["machine"]["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    inversion = results["inversion"]
    # tiny models on short songs say nothing about the targets: the smoke test gives no verdict
    results["targets_met"] = None if quick else {
        "real_time_factor": results["convert"]["real_time_factor"] >= TARGETS["real_time_factor"],
        "fraction_of_bound": results["convert"]["fraction_of_bound"] >= TARGETS["fraction_of_bound"],
        "peak_rss_ratio": results["memory"]["peak_rss_ratio"] <= TARGETS["peak_rss_ratio"],
        "inversion": inversion["improvement_db"] >= TARGETS["improvement_db"]
        and inversion["source_phase_griffin_lim"]["seconds"] <= inversion["librosa_griffinlim"]["seconds"],
        "throughput_real_time": results["preprocessing"]["throughput_real_time"] >= TARGETS["throughput_real_time"]}
    cpu_speedup = results["bf16_training_speedup"].get("cpu")
    if results["targets_met"] is not None and cpu_speedup is not None:
        results["targets_met"]["bf16_training_speedup"] = cpu_speedup >= TARGETS["bf16_training_speedup"]
    return results


def table(results: dict) -> str:
    """The results as a plain-text table (also Markdown-friendly): figure, value, target, met. A --quick run (no
    targets_met) has no target and verdict columns, and says it is a smoke test."""
    convert, memory, inversion = results["convert"], results["memory"], results["inversion"]
    met = collections.defaultdict(str, {key: "yes" if value else "no"
                                        for key, value in (results["targets_met"] or {}).items()})
    width, n_blocks = convert["generator"]["width"], convert["generator"]["n_blocks"]
    options = "".join(f", {name}" for name in ("bf16", "compile") if convert[name])
    rows = [
        (f"convert real_time_factor ({convert['audio_seconds'] / 60:.1f} min song, generator {width}x{n_blocks}, "
         f"batch {convert['batch_size']}{options})", f"{convert['real_time_factor']:.2f}x", ">= 8x",
         met["real_time_factor"]),
        (f"  generator-only bound ({convert['windows']} windows x {convert['forward_seconds_per_window']:.2f} s)",
         f"{convert['generator_bound_real_time_factor']:.2f}x", "", ""),
        ("  fraction of the bound", f"{100 * convert['fraction_of_bound']:.0f} %", ">= 80 %",
         met["fraction_of_bound"]),
        (f"peak RSS {memory['long_audio_seconds'] / 60:.1f} min / {memory['short_audio_seconds']:.0f} s song",
         f"{memory['peak_rss_mb_long']:.0f} / {memory['peak_rss_mb_short']:.0f} MB = {memory['peak_rss_ratio']:.2f}",
         "<= 1.5", met["peak_rss_ratio"]),
        ("  growth long - short; RSS after the imports alone",
         f"{memory['peak_rss_growth_mb']:+.0f} MB; {memory['rss_after_imports_mb']:.0f} MB", "", ""),
    ]
    for key, label in (("librosa_griffinlim", "librosa.griffinlim, random phase"),
                       ("source_phase_griffin_lim", "griffin_lim from source phase, torch STFT"),
                       ("source_phase_librosa_stft", "  the same with librosa's STFT")):
        rows.append((f"inversion {inversion['audio_seconds']:.0f} s, {inversion['n_iter']} it: {label}",
                     f"{inversion[key]['spectral_convergence_db']:.1f} dB, {inversion[key]['seconds']:.2f} s", "", ""))
    rows.append(("  source phase better by", f"{inversion['improvement_db']:.1f} dB", ">= 15 dB, no slower",
                 met["inversion"]))
    preprocessing = results["preprocessing"]
    rows.append((f"preprocessing ({preprocessing['songs']} songs, {preprocessing['audio_seconds'] / 60:.1f} min)",
                 f"{preprocessing['throughput_real_time']:.0f}x", ">= 300x", met["throughput_real_time"]))
    for run in results["training"]:
        rows.append((f"training {MODEL_LABELS[run['model']]} {run['width']}x{run['n_blocks']}, batch "
                     f"{run['batch_size']}, {run.get('precision', 'float32')}",
                     f"{run['iterations_per_second']:.3f} it/s", "", ""))
    for model, ratio in results.get("bf16_training_speedup", {}).items():
        run = next(run for run in results["training"] if run["model"] == model)
        target = ">= 1.7x" if model == "cpu" else ""
        rows.append((f"  bf16 / float32, training {run['width']}x{run['n_blocks']}", f"{ratio:.2f}x", target,
                     met["bf16_training_speedup"] if target else ""))
    if results["machine"].get("native_bf16") is False:
        rows.append((f"  bf16 training not timed: this CPU ({results['machine']['cpu_capability']}) emulates bf16",
                     "", "", ""))
    machine = results["machine"]
    rows.append((f"machine: {machine['cpus']} CPUs, {machine['device']}, load average before / after",
                 f"{machine['load_average_before'][0]:.1f} / {machine['load_average_after'][0]:.1f}", "", ""))
    header = ("figure", "value", "target", "met")
    if results["targets_met"] is None:
        header, rows = header[:2], [row[:2] for row in rows]
    sizes = [max(len(row[column]) for row in rows + [header]) for column in range(len(header))]
    lines = [" | ".join(cell.ljust(size) for cell, size in zip(row, sizes)).rstrip() for row in
             [header, tuple("-" * size for size in sizes), *rows]]
    if results["targets_met"] is None:
        lines.insert(0, "smoke test (--quick): tiny models on short songs, not comparable with the targets\n")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny models and short songs: checks the benchmark runs")
    parser.add_argument("--json", type=Path, default=Path("samples/benchmark.json"),
                        help="where to write the results (default: samples/benchmark.json)")
    parser.add_argument("--clips", type=Path, default=CLIPS, help=f"folder with pop/ and jazz/ clips (default: "
                        f"$POP2JAZZ_CLIPS, else {CLIPS})")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda (default: auto)")
    parser.add_argument("--batch-size", type=positive_int, default=4, help="generator windows per call in conversion "
                        "(default: 4)")
    parser.add_argument("--train-batch-sizes", type=positive_int_list, default=[1],
                        help="comma-separated batch sizes for the paper-size "
                        "training figure (default: 1)")
    parser.add_argument("--threads", type=positive_int, help="torch threads (default: torch's choice, one per core)")
    parser.add_argument("--bf16", action="store_true", help="convert with bf16 autocast, as convert.py --bf16")
    parser.add_argument("--compile", action="store_true", help="torch.compile, as convert.py and train.py --compile")
    parser.add_argument("--channels-last", action="store_true", help="pass --channels-last to train.py")
    return parser.parse_args(argv)


def benchmark(args: argparse.Namespace) -> int:
    """Run every measurement as `args` say, print the table and write the JSON; see main() for the return codes."""
    if not (args.clips / "pop").is_dir() or not (args.clips / "jazz").is_dir():
        raise MissingFileError(f"{args.clips} has no pop/ and jazz/ folders of clips; pass --clips or set "
                                f"$POP2JAZZ_CLIPS")
    check_writable(args.json.parent, how="pass --json with a writable place")  # before minutes of measuring
    if args.threads:
        torch.set_num_threads(args.threads)
    device = str(pick_device(args.device))
    results = run_benchmark(args.quick, args.clips, device, args.batch_size,
                            args.train_batch_sizes, args.bf16, args.compile,
                            args.channels_last)
    print(table(results))
    atomic_write_bytes(args.json, json.dumps(results, indent=2).encode())
    print(f"\nwritten to {args.json}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: 0 when measured, 1 without clips or a writable --json place, 130 / 143 when
    interrupted (the temporary folder of songs and runs is removed)."""
    return run_command(benchmark, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
