"""A/B test of train.py's levers (sound quality, level and data, a larger generator) on held-out songs: which
ones make the default?

    uv run experiments/ab.py                     # 7 runs of 600 steps, one at a time: hours on 2 CPU cores
    uv run experiments/ab.py --quick             # tiny models, 2 steps: checks the script works (the tests run it;
                                                 # its 7 runs take about 6 minutes on 2 cores, the judges most)
    uv run experiments/ab.py --runs baseline:1,residual:1   # more runs into the same table
    uv run experiments/ab.py --runs float32:0,float32:1,bf16:0,bf16:1 --output samples/ab_bf16  # bf16 training
    uv run experiments/ab.py --levers --output samples/ab_levers   # the level and data levers, 2 seeds each
    uv run experiments/ab.py --runs baseline:0,level_and_gain:0 --bf16   # every run in bf16 (native-bf16 CPUs)

Protocol (every run the same way, one at a time, so they do not slow each other):
- data: the clips in --clips (pop/ and jazz/) preprocessed once with --val-fraction 0.3, so 3 of 10 songs per
  domain are held out; the same split (seed 0) for every run;
- training: train.py at the CPU size (--width 16 --n-blocks 3), the same number of optimiser steps for every
  run, the lever's flags on top of the paper's recipe (nine_blocks's --n-blocks 9 in place of the 3); a run is a
  variant and a seed;
- figures: evaluate.py on the held-out pop songs: the pretrained tagger's (musicnn MSD at -20 dBFS RMS, the
  headline judge) mean P(jazz), share of 3-s patches jazz > pop and KID to the real jazz, read against the pop,
  the EQ-to-jazz baseline and the real jazz; the second-opinion classifier's style transfer rate; chroma
  similarity to the source, spectral convergence of the written audio against the generated magnitude
  (consistency), the checkerboard measure; and training seconds per step;
- a picture of one held-out 6 s excerpt as input and as each run converts it, and those conversions as WAVs;
  the runs' loss curves overlaid in one picture.

Writes <output>/ab.md (the table), ab.json, ab.png, losses.png, <run>.wav and the runs' checkpoints and reports
under <output>/runs/. A run already finished there is not trained again, and an interrupted one resumes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from pop2jazz.checkpoint import generator_from, load_checkpoint  # noqa: E402
from pop2jazz.commands import run_child, run_command  # noqa: E402
from pop2jazz.conversion import convert_audio, convert_magnitude  # noqa: E402
from pop2jazz.dataset import example_clips, listed_songs  # noqa: E402
from pop2jazz.errors import ChildFailed, MissingFileError  # noqa: E402
from pop2jazz.output_files import atomic_write_bytes, check_writable, write_audio  # noqa: E402
from pop2jazz.plots import save_figure, save_spectrograms  # noqa: E402  (it selects matplotlib's Agg backend)
import matplotlib.pyplot as plt  # noqa: E402
from pop2jazz.spectrogram import Representation, audio_to_image, load_audio, magnitude_to_image  # noqa: E402

VARIANTS = {  # name -> train.py flags on top of the paper's recipe
    "baseline": [],
    "resize": ["--upsample", "resize"],
    "residual": ["--output", "residual"],
    # a residual generator is the identity by construction, which the identity loss (Zhu et al. 5.2) only enforces
    "residual_no_identity": ["--output", "residual", "--lambda-identity", "0"],
    "spectral_norm": ["--spectral-norm"],
    "combined": ["--upsample", "resize", "--output", "residual", "--spectral-norm"],
    # the paper's recipe in each precision, named apart from "baseline", whose precision is the machine's default
    "float32": ["--no-bf16"],
    "bf16": ["--bf16"],
    # the level and data levers (issue 24), alone and the two level levers together
    "level_match": ["--level-match"],
    "random_gain": ["--random-gain", "12"],
    "level_and_gain": ["--level-match", "--random-gain", "12"],
    "random_windows": ["--random-windows"],
    "pitch_time": ["--pitch-shift", "2", "--time-stretch", "0.08"],
    "diffaugment": ["--diffaugment"],
    # a larger generator (issue 24, lever 5): the paper's 9 residual blocks at the CPU width, 2.6x the weights
    "nine_blocks": ["--n-blocks", "9"],
}
LEVEL_RUNS = ",".join(f"{name}:{seed}" for seed in (0, 1) for name in ("baseline", "level_match", "random_gain",
                      "level_and_gain", "random_windows", "pitch_time", "diffaugment"))
DEFAULT_RUNS = "baseline:0,resize:0,residual:0,spectral_norm:0,combined:0,baseline:1,combined:1"
CLIPS = example_clips()
FULL = {"model": ["--width", "16", "--n-blocks", "3"], "steps": 600, "griffin_lim_iters": 32}
QUICK = {"model": ["--width", "4", "--n-blocks", "1", "--pool-size", "2"], "steps": 2, "griffin_lim_iters": 2}


def run(command: list[str], log: Path) -> None:
    """Run a project script with this Python, its output appended to `log`; raises RuntimeError with the log's
    tail when it fails."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as file:
        code = run_child([sys.executable, *command], cwd=ROOT, stdout=file, stderr=subprocess.STDOUT).returncode
    if code != 0:
        raise ChildFailed(f"{' '.join(command)} failed (exit {code}); the end of {log}:\n"
                           + log.read_text()[-3000:])


def prepare_data(clips: Path, folder: Path) -> Path:
    """The clips preprocessed once into `folder` with 30 % of the songs held out: `folder`."""
    if not (folder / "pop_val").is_dir():
        run(["audio_preprocessing.py", "--pop", str(clips / "pop"), "--jazz", str(clips / "jazz"), "--output",
             str(folder), "--val-fraction", "0.3", "--seed", "0"], folder.parent / "preprocessing.log")
    return folder


def time_steps(name: str, data: Path, folder: Path, settings: dict, steps: int) -> float:
    """Seconds per training step of variant `name`, measured apart from its run: 2 epochs of `steps` steps in
    `folder`, the second (warm) one timed. Run with nothing else on the machine, it is the figure to compare
    (the runs' own timings share the machine with whatever else ran meanwhile)."""
    checkpoint = folder / "checkpoints" / "latest.pt"
    timed = load_checkpoint(checkpoint)["history"] if checkpoint.is_file() else []
    if len(timed) != 2:  # not timed yet; a finished timing is kept
        run(["train.py", "--data", str(data), "--checkpoint-dir", str(folder / "checkpoints"), "--samples-dir",
             str(folder / "samples"), *settings["model"], *VARIANTS[name], "--epochs", "2", "--steps-per-epoch",
             str(steps), "--griffin-lim-iters", "1", "--overwrite"], folder / "timing.log")
        timed = load_checkpoint(checkpoint)["history"]
    return timed[-1]["seconds"] / steps


def train_and_evaluate(name: str, seed: int, data: Path, folder: Path, settings: dict,
                       evaluate_again: bool = False) -> dict:
    """Train one run (or finish it) and evaluate it on the held-out songs (again with `evaluate_again`): its
    row of figures."""
    chunks = max(len(list((data / f"{domain}_train").glob("*.npy"))) for domain in ("pop", "jazz"))
    epochs = max(1, math.ceil(settings["steps"] / chunks))
    steps_per_epoch = min(chunks, settings["steps"])
    checkpoint = folder / "checkpoints" / "latest.pt"
    trained = checkpoint.is_file() and load_checkpoint(checkpoint)["epoch"] >= epochs
    if not trained:
        command = ["train.py", "--data", str(data), "--checkpoint-dir", str(folder / "checkpoints"),
                   "--samples-dir", str(folder / "samples"), *settings["model"], *VARIANTS[name], "--seed", str(seed),
                   "--epochs", str(epochs), "--steps-per-epoch", str(steps_per_epoch), "--griffin-lim-iters", "8"]
        run([*command, *(["--resume"] if checkpoint.is_file() else [])], folder / "train.log")
    report = folder / "eval"
    if not (report / "figures.json").is_file() or not trained or evaluate_again:
        run(["evaluate.py", "--checkpoint", str(checkpoint), "--data", str(data), "-o", str(report),
             "--griffin-lim-iters", str(settings["griffin_lim_iters"])], folder / "evaluate.log")
    figures = json.loads((report / "figures.json").read_text())
    history = load_checkpoint(checkpoint)["history"]
    return {"run": f"{name}:{seed}", "variant": name, "seed": seed, "flags": " ".join(VARIANTS[name]),
            "steps": epochs * steps_per_epoch,
            "seconds_per_step": sum(row["seconds"] for row in history) / (epochs * steps_per_epoch),
            "transfer_rate": figures["style_transfer"]["converted"]["jazz_rate"],
            "jazz_probability": figures["style_transfer"]["converted"]["jazz_probability"],
            "transfer_rate_audio": figures["style_transfer"]["converted_audio"]["jazz_rate"],
            "level_control": figures["style_transfer"]["level_control"]["jazz_rate"],
            "level_change_db": figures["level_change_db"],
            "chroma_similarity": figures["content"]["chroma_similarity"],
            "consistency_db": figures["inversion"]["source_phase_griffin_lim"]["spectral_convergence_db"],
            "checkerboard_db": figures["artefacts"]["checkerboard_db"],
            "pop_baseline": figures["style_transfer"]["pop_baseline"],
            "eq_baseline": figures["style_transfer"]["eq_baseline"],
            "jazz_ceiling": figures["style_transfer"]["jazz_ceiling"],
            "chroma_floor": figures["content"]["chroma_similarity_floor"],
            "classifier_accuracy": figures["classifier"]["cv_accuracy"], "held_out_chunks":
                figures["style_transfer"]["converted"]["chunks"],
            "tagger_jazz": figures["tagger"]["rows"]["converted"]["jazz_probability"],
            "tagger_jazz_over_pop": figures["tagger"]["rows"]["converted"]["jazz_over_pop"],
            "tagger_kid": figures["tagger"]["kid"]["converted"],
            "holes": figures["artefacts"]["holes"]["loud_cells_dropped"],
            "holes_loud": figures["artefacts"]["holes_loud_master"]["loud_cells_dropped"],
            "tagger_baselines": {row: figures["tagger"]["rows"][row]["jazz_probability"]
                                 for row in ("pop_baseline", "eq_baseline", "smear_control", "jazz_ceiling")},
            "history": history}


PRECISIONS = ("float32", "bf16")  # variants that change how the recipe is computed, not the recipe


def group_means(rows: list[dict], keys: tuple[str, ...]) -> dict[str, dict[str, tuple[float, float]]]:
    """Per variant, per key: (mean over its seeds, spread = largest minus smallest seed's value)."""
    groups = {}
    for row in rows:
        groups.setdefault(row["variant"], []).append(row)
    return {name: {key: (sum(r[key] for r in group) / len(group), max(r[key] for r in group)
                         - min(r[key] for r in group)) for key in keys} for name, group in groups.items()}


MIN_CHROMA = 0.85  # a default keeps the song: chroma similarity to the source at least this
MAX_LOUD_HOLES = 0.02  # and punches holes in under this share of a loud master's loud cells


def verdicts(rows: list[dict]) -> dict[str, str]:
    """The rule for each lever, on means over seeds: it becomes a default only when it raises both the tagger's
    mean P(jazz) and its share of patches jazz > pop above the baseline's by more than the larger seed spread of
    the two (lever's and baseline's), keeps the chroma similarity >= MIN_CHROMA, leaves holes in under
    MAX_LOUD_HOLES of the loud master's loud cells and does not raise the checkerboard beyond the baseline's by
    more than its seed spread. Each verdict names what failed. The precision variants are no levers:
    `precision_verdict` judges them."""
    keys = ("tagger_jazz", "tagger_jazz_over_pop", "chroma_similarity", "checkerboard_db", "holes_loud")
    means = group_means([row for row in rows if all(key in row for key in keys)], keys)
    base = means.get("baseline")
    if base is None:
        return {}
    result = {}
    for name, mean in means.items():
        if name == "baseline" or name in PRECISIONS:
            continue
        failed = [f"{label} not above the baseline by the seed spread" for key, label in
                  (("tagger_jazz", "P(jazz)"), ("tagger_jazz_over_pop", "jazz > pop share"))
                  if mean[key][0] <= base[key][0] + max(base[key][1], mean[key][1])]
        if mean["chroma_similarity"][0] < MIN_CHROMA:
            failed.append(f"chroma {mean['chroma_similarity'][0]:.2f} < {MIN_CHROMA}")
        if mean["holes_loud"][0] >= MAX_LOUD_HOLES:
            failed.append(f"loud-master holes {mean['holes_loud'][0]:.1%} >= {MAX_LOUD_HOLES:.0%}")
        if mean["checkerboard_db"][0] > base["checkerboard_db"][0] + max(base["checkerboard_db"][1],
                                                                         mean["checkerboard_db"][1]):
            failed.append("checkerboard raised")
        result[name] = "wins" if not failed else "no (" + "; ".join(failed) + ")"
    return result


def precision_verdict(rows: list[dict]) -> str | None:
    """Whether bf16 training trains the same model as float32, as far as the judges hear: each of the tagger's
    P(jazz) and jazz > pop share, the transfer rate and the chroma similarity of the bf16 runs' mean lies within
    the float32 seeds' range widened by half their spread on each side. None without 2 float32 and 1 bf16 run."""
    keys = ("tagger_jazz", "tagger_jazz_over_pop", "transfer_rate", "chroma_similarity")
    float32 = [row for row in rows if row["variant"] == "float32"]
    if len(float32) < 2 or not any(row["variant"] == "bf16" for row in rows):
        return None
    bf16 = group_means(rows, keys)["bf16"]
    outside = []
    for key in keys:
        low, high = min(row[key] for row in float32), max(row[key] for row in float32)
        margin = (high - low) / 2
        if not low - margin <= bf16[key][0] <= high + margin:
            outside.append(f"{key} {bf16[key][0]:.3f} outside [{low:.3f}, {high:.3f}]")
    if outside:
        return "bf16 differs from float32 beyond the seed spread: " + "; ".join(outside)
    return ("bf16 trains the same model as float32 as far as the judges hear: the bf16 runs' means of the tagger's "
            "P(jazz) and jazz > pop share, the transfer rate and the chroma similarity lie within the float32 "
            "seeds' spread")


def markdown(rows: list[dict], settings: dict, machine: dict) -> str:
    """ab.md: the protocol in one paragraph and the table."""
    first = rows[0]
    tagger = first["tagger_baselines"]
    lines = [f"# Sound-quality A/B: {len(rows)} runs of {first['steps']} steps, "
             f"model {' '.join(settings['model'])}", "",
             f"Held-out: {first['held_out_chunks']} pop chunks (3 songs). The pretrained tagger (musicnn MSD, each "
             f"chunk at -20 dBFS RMS), mean P(jazz): the pop {tagger['pop_baseline']:.2f}, the EQ-to-jazz baseline "
             f"{tagger['eq_baseline']:.2f}, the smeared pop {tagger['smear_control']:.2f}, the real held-out jazz "
             f"{tagger['jazz_ceiling']:.2f}. The classifier (second opinion, cross-validated accuracy "
             f"{first['classifier_accuracy']:.0%}): unconverted pop {first['pop_baseline']['jazz_rate']:.0%} "
             f"classified jazz, EQ-to-jazz {first['eq_baseline']['jazz_rate']:.0%}, real jazz "
             f"{first['jazz_ceiling']['jazz_rate']:.0%}; chroma "
             f"floor (unrelated pop/jazz) {first['chroma_floor']:.3f}. Machine: {machine['cpus']} CPUs, "
             f"{machine['threads']} torch thread(s) per run, load average {machine['load_before']:.1f} before and "
             f"{machine['load_after']:.1f} after. s/step: "
             + ("each variant timed apart (--timing-steps)" if "timed_seconds_per_step" in first else
                "the run's own mean, on a machine that may have been busy with other work") + ".", "",
             "| run | flags | tagger P(jazz) | patches jazz > pop | KID to jazz | transfer rate | "
             "level change (dB) / its control | chroma | consistency (dB) | checkerboard (dB) | holes | "
             "holes, loud master | s/step |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        seconds = row.get("timed_seconds_per_step", row["seconds_per_step"])
        lines.append(f"| {row['run']} | `{row['flags'] or 'paper'}` | {row['tagger_jazz']:.3f} | "
                     f"{row['tagger_jazz_over_pop']:.0%} | {row['tagger_kid']:.2f} | {row['transfer_rate']:.0%} | "
                     f"{row['level_change_db']:+.1f} / {row['level_control']:.0%} | "
                     f"{row['chroma_similarity']:.3f} | {row['consistency_db']:.1f} | {row['checkerboard_db']:+.1f} | "
                     f"{row.get('holes', float('nan')):.1%} | {row.get('holes_loud', float('nan')):.1%} | "
                     f"{seconds:.2f} |")
    lever_verdicts = verdicts(rows)
    if lever_verdicts:
        lines += ["", "Verdicts (means over seeds, the rule of experiments/ab.py `verdicts`): "
                  + ", ".join(f"{name}: {verdict}" for name, verdict in lever_verdicts.items())]
    precision = precision_verdict(rows)
    if precision:
        lines += ["", f"Precision: {precision}."]
    return "\n".join(lines + [""])


def plot_losses(rows: list[dict], path: Path) -> None:
    """losses.png: every run's mean loss per epoch, one panel per loss, the runs overlaid (a colour per seed, a
    line style per variant), written atomically."""
    names = [key for key in rows[0]["history"][0] if key.startswith("loss_")]
    figure, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.6), layout="constrained")
    styles = {variant: style for variant, style in zip(dict.fromkeys(row["variant"] for row in rows),
                                                       ("-", "--", ":", "-."))}
    for row in rows:
        epochs = [entry["epoch"] for entry in row["history"]]
        for axis, name in zip(axes, names):
            axis.plot(epochs, [entry[name] for entry in row["history"]], styles.get(row["variant"], "-"),
                      color=f"C{row['seed']}", label=row["run"])
    for axis, name in zip(axes, names):
        axis.set(title=name.removeprefix("loss_"), xlabel="epoch")
    axes[0].legend(fontsize="small")
    figure.suptitle("training losses per epoch (mean over the epoch's steps)")
    save_figure(figure, path)


def picture(rows: list[dict], data: Path, output: Path, n_iter: int) -> None:
    """ab.png: the first held-out pop song's first chunk as input and as each run converts it; <run>.wav each."""
    song = listed_songs(data / "pop_val")[0]
    rep = Representation()
    excerpt = load_audio(song, rep.sample_rate)[: rep.chunk_samples]
    panels = {f"input: {song.name}, first {rep.chunk_seconds:.1f} s": audio_to_image(excerpt, rep)}
    for row in rows:
        state = load_checkpoint(output / "runs" / row["run"].replace(":", "_seed") / "checkpoints" / "latest.pt")
        generator = generator_from(state, "pop2jazz")
        magnitude, _ = convert_magnitude(generator, excerpt, rep)
        panels[f"{row['run']}: transfer {row['transfer_rate']:.0%}, chroma {row['chroma_similarity']:.2f}"] = \
            magnitude_to_image(magnitude, rep)
        provenance = {"tool": "experiments/ab.py", "direction": "pop2jazz", "input": str(song), "run": row["run"]}
        write_audio(output / f"{row['run'].replace(':', '_seed')}.wav", convert_audio(generator, excerpt, rep, n_iter),
                    rep.sample_rate, provenance)
    write_audio(output / "input.wav", excerpt, rep.sample_rate,
                {"tool": "experiments/ab.py", "input": str(song), "excerpt_seconds": rep.chunk_seconds})
    save_spectrograms(panels, rep, output / "ab.png", columns=2)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default=DEFAULT_RUNS, help=f"variant:seed pairs, comma-separated; variants: "
                        f"{', '.join(VARIANTS)} (default: {DEFAULT_RUNS})")
    parser.add_argument("--steps", type=int, help="optimiser steps per run (default: 600; 2 with --quick)")
    parser.add_argument("--clips", type=Path, default=CLIPS, help=f"folder with pop/ and jazz/ songs (default: "
                        f"$POP2JAZZ_CLIPS, else ../shared/audio/gtzan_mini beside the checkout: here {CLIPS})")
    parser.add_argument("--output", type=Path, default=Path("samples/ab"), help="default: samples/ab")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (default: 1, so that other "
                        "work on a 2-core machine takes the other core without slowing the runs)")
    parser.add_argument("--evaluate-again", action="store_true", help="evaluate finished runs again (after a "
                        "change to evaluate.py), so that every row is measured by the same code")
    parser.add_argument("--timing-steps", type=int, default=0, help="also time each variant apart: 2 epochs of N "
                        "steps, on a machine doing nothing else (default: 0 = off)")
    parser.add_argument("--bf16", action="store_true", help="train every run with bf16 autocast (train.py --bf16): "
                        "about 1.6x the steps an hour on a CPU with native bf16 (docs/speed.md); the variants then "
                        "differ only by their levers, all in one precision")
    parser.add_argument("--quick", action="store_true", help="tiny models, 2 steps: a smoke test of this script")
    parser.add_argument("--levers", action="store_true", help=f"the level and data levers' A/B, 2 seeds each "
                        f"(--runs {LEVEL_RUNS})")
    args = parser.parse_args(argv)
    args.runs = LEVEL_RUNS if args.levers else args.runs
    args.runs = [(name, int(seed)) for name, seed in (item.split(":") for item in args.runs.split(","))]
    unknown = sorted({name for name, _ in args.runs} - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}: use {', '.join(VARIANTS)}")
    if args.bf16 and {name for name, _ in args.runs} & {"float32", "bf16"}:
        parser.error("--bf16 sets the precision of every run: leave it out to compare the float32 and bf16 variants")
    return args


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: 0 when the table is written, 1 without clips or when a run fails (its log's tail
    printed), 130 / 143 when interrupted (finished runs are kept; an interrupted one resumes next time)."""
    return run_command(experiment, parse_args(argv))


def experiment(args: argparse.Namespace) -> int:
    """Every run of `args`, then the table, the JSON and the picture."""
    if not (args.clips / "pop").is_dir() or not (args.clips / "jazz").is_dir():
        raise MissingFileError(f"{args.clips} has no pop/ and jazz/ folders of songs; pass --clips or set "
                                f"$POP2JAZZ_CLIPS")
    check_writable(args.output, how="pass --output with a writable place")  # before hours of training
    settings = dict(QUICK if args.quick else FULL)
    settings["steps"] = args.steps or settings["steps"]
    settings["model"] = settings["model"] + (["--bf16"] if args.bf16 else [])
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the runs' processes inherit it
    torch.set_num_threads(args.threads)
    machine = {"cpus": os.cpu_count(), "threads": args.threads, "load_before": os.getloadavg()[0]}
    data = prepare_data(args.clips, args.output / "data")
    rows = []
    for name, seed in args.runs:
        start = time.perf_counter()
        rows.append(train_and_evaluate(name, seed, data, args.output / "runs" / f"{name}_seed{seed}", settings,
                                       args.evaluate_again))
        print(f"{name}:{seed}: transfer {rows[-1]['transfer_rate']:.0%}, chroma {rows[-1]['chroma_similarity']:.3f}, "
              f"consistency {rows[-1]['consistency_db']:.1f} dB, checkerboard {rows[-1]['checkerboard_db']:+.1f} dB "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    if args.timing_steps > 0:
        timings = {name: time_steps(name, data, args.output / "timing" / name, settings, args.timing_steps)
                   for name in dict.fromkeys(name for name, _ in args.runs)}
        for row in rows:
            row["timed_seconds_per_step"] = timings[row["variant"]]
    machine["load_after"] = os.getloadavg()[0]
    picture(rows, data, args.output, settings["griffin_lim_iters"])
    plot_losses(rows, args.output / "losses.png")
    atomic_write_bytes(args.output / "ab.json", json.dumps({"settings": settings, "machine": machine, "runs": rows},
                                                            indent=2).encode())
    text = markdown(rows, settings, machine)
    atomic_write_bytes(args.output / "ab.md", text.encode())
    print(f"\n{text}\nwritten to {args.output}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
