"""A training run: its name and place, which checkpoint a command uses, never starting over a run by accident,
and resuming one with every setting it was started with (train.py and simple_gan.py).

A run named NAME keeps its checkpoint in checkpoints/NAME/latest.pt, with the generator-only export
generators.pt beside it, and its samples in samples/NAME/.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

from pop2jazz.checkpoint import BUNDLED_MODEL, CheckpointError, load_checkpoint, state_bytes
from pop2jazz.compute import rng_state
from pop2jazz.errors import InputError, MissingFileError
from pop2jazz.spectrogram import Representation

CHECKPOINTS, SAMPLES, LATEST = Path("checkpoints"), Path("samples"), "latest.pt"  # a run NAME: CHECKPOINTS/NAME/LATEST
GENERATORS_FILE = "generators.pt"  # beside LATEST: the run's generator-only export, to convert with and share
DEFAULT_RUN = "pop2jazz"  # the run train.py, convert.py and evaluate.py use without --name
# what training writes for a person
RUN_OUTPUTS = ("epoch_*", "losses.csv", "losses.png", "transfer_rate.csv", "transfer_rate.png", "index.html")


# which checkpoint a command uses (convert.py, evaluate.py, app.py)

def add_checkpoint_options(parser: argparse.ArgumentParser) -> None:
    """The options that say which checkpoint a command uses (see find_checkpoint): --name and --checkpoint."""
    parser.add_argument("--name", default=DEFAULT_RUN, help=f"the train.py run whose checkpoint to use: "
                        f"{CHECKPOINTS}/NAME/{LATEST}; without a run of the default name, the bundled model "
                        f"pretrained/{BUNDLED_MODEL.name} (default: {DEFAULT_RUN})")
    parser.add_argument("--checkpoint", type=Path, help="a checkpoint file to use instead of the run's: a train.py "
                        f"{LATEST} or a {GENERATORS_FILE} export")


def find_checkpoint(name: str, path: Path | None = None) -> Path:
    """The checkpoint a command uses: `path` (--checkpoint) when given (load_checkpoint says when it is missing),
    else the latest one of the run `name`, checkpoints/NAME/latest.pt, else, for the default run name only, the
    bundled model (BUNDLED_MODEL). The one place that decides it, for convert.py and evaluate.py; `describe`
    says which it was.

    Raises MissingFileError saying how to get one, and naming the runs there are, when the run has none.
    """
    if path is not None:
        return Path(path)
    found = CHECKPOINTS / name / LATEST
    if found.is_file():
        return found
    if name == DEFAULT_RUN and BUNDLED_MODEL.is_file():
        return BUNDLED_MODEL
    runs = list_runs()
    there = f"; the runs there are {', '.join(runs)} (pass --name)" if runs else ""
    older = f"; a checkpoint from before named runs is at {CHECKPOINTS / LATEST} (pass --checkpoint " \
            f"{CHECKPOINTS / LATEST})" if (CHECKPOINTS / LATEST).is_file() else ""
    raise MissingFileError(f"no checkpoint at {found}: train one with `uv run train.py --name {name}`, or pass "
                            f"--checkpoint{there}{older}")


def list_runs() -> list[str]:
    """The names of the runs under checkpoints/ that have a latest.pt, in name order."""
    return sorted(run.parent.name for run in CHECKPOINTS.glob(f"*/{LATEST}"))


# named runs, never started over by accident, and resumed (train.py, simple_gan.py)

def add_run_options(parser: argparse.ArgumentParser, name: str) -> None:
    """A training script's run options: --name (default `name`), and --resume or --overwrite (argparse refuses
    both at once: one continues the run the other replaces)."""
    parser.add_argument("--name", default=name, help=f"name of the run: its checkpoint goes to "
                        f"{CHECKPOINTS}/NAME/{LATEST}, its samples to {SAMPLES}/NAME/ (default: {name})")
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--resume", action="store_true", help="continue the run from its checkpoint with its saved "
                        "settings (--epochs may extend the run)")
    choice.add_argument("--overwrite", action="store_true", help="start afresh where a run is already: its "
                        "checkpoint and samples are removed once the new run has checked its data and folders")


def explicit_options(parser: argparse.ArgumentParser, argv: list[str] | None) -> set[str]:
    """The destinations of the options given on the command line `argv` (not left at their defaults).

    argparse sets a default only where the namespace lacks the attribute, so a namespace pre-filled with a
    marker tells given from defaulted.
    """
    marker = object()
    namespace = argparse.Namespace(**{action.dest: marker for action in parser._actions})
    parsed = parser.parse_args(argv, namespace)
    return {name for name, value in vars(parsed).items() if value is not marker}


def settings_of(args: argparse.Namespace) -> dict:
    """The settings of a run as plain values for its checkpoint (paths as strings, bookkeeping left out)."""
    return {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()
            if key != "given"}


def resume_settings(args: argparse.Namespace, saved: dict, session_options: set[str]) -> list[str]:
    """Put every setting a run was started with back into `args`: all of `saved` but `session_options`.

    Session options (where data and outputs are, the device, speed flags, when to stop) keep this invocation's
    values; `epochs` keeps it only when given on the command line (`args.given`), which extends a run. Returns
    a note for each other option given now that the saved setting overrides.
    """
    notes = []
    for name, value in saved.items():
        if name in session_options or (name == "epochs" and name in args.given) or not hasattr(args, name):
            continue
        current = getattr(args, name)
        if name in args.given and current != value:
            notes.append(f"--{name.replace('_', '-')} {current} ignored: the run was started with {value}")
        setattr(args, name, Path(value) if isinstance(current, Path) else value)
    return notes


def resume(args: argparse.Namespace, path: Path, device: torch.device | str, session_options: set[str],
           kind: str) -> dict:
    """The checkpoint of `kind` at `path` for --resume, with every setting it was started with put back into `args`
    (see `resume_settings`; a note is printed for each given option it overrides). Raises CheckpointError saying
    how to start a run instead when there is none, or naming the file when it is not a checkpoint of `kind`."""
    try:
        state = load_checkpoint(path, device, kind)
    except FileNotFoundError:
        raise CheckpointError(f"--resume: no checkpoint at {path}; train without --resume first, or say where the "
                              f"run is (--name)") from None
    except ValueError as error:
        raise CheckpointError(f"--resume: {error}") from error
    if state.get("generators_only"):
        raise CheckpointError(f"--resume: {path} is a generator-only export (for convert.py and evaluate.py), "
                              f"without the discriminators and optimisers training needs; resume from the run's "
                              f"{LATEST}")
    for note in resume_settings(args, state["args"], session_options):
        print(f"note: {note}")
    return state


def training_state(kind: str, epoch: int, rep: Representation, config: dict, history: list[dict],
                   args: argparse.Namespace, parts: dict, **extra) -> dict:
    """What a training checkpoint holds: its kind ("cyclegan", "simple_gan"), the epoch, representation, model
    config, loss history, settings, RNG state, the state_dict of every part (networks, optimisers, schedulers,
    image pools) and `extra` values."""
    return {"kind": kind, "epoch": epoch, "representation": rep.to_dict(), "model": config, "history": history,
            "args": settings_of(args), "rng": rng_state(), **extra,
            **{name: part.state_dict() for name, part in parts.items()}}


def restore_parts(parts: dict, state: dict) -> None:
    """Load each part's state_dict from a checkpoint written by `training_state`."""
    for name, part in parts.items():
        part.load_state_dict(state[name])


def run_files(checkpoint: Path, samples: Path) -> list[Path]:
    """The files of a run already at `checkpoint` and in `samples`: the checkpoint, its generator-only export and
    the RUN_OUTPUTS."""
    found = [path for path in (checkpoint, checkpoint.with_name(GENERATORS_FILE)) if path.is_file()]
    return found + sorted(path for pattern in RUN_OUTPUTS for path in Path(samples).glob(pattern) if path.is_file())


def check_batch_size(batch_size: int, chunks: int) -> None:
    """Raise InputError, before anything is written, when not one batch of `batch_size` fits in the `chunks`
    training chunks (of this process): an epoch would have no step and the run would save an untrained model."""
    if batch_size > chunks:
        raise InputError(f"--batch-size {batch_size} is larger than the {chunks} training chunks: lower it or add "
                         f"songs")


def check_new_run(checkpoint: Path, samples: Path, resume: bool, overwrite: bool) -> list[Path]:
    """The files an --overwrite run will clear (none when the place is free or the run resumes).

    Raises CheckpointError naming the folder and offering --resume, another --name or --overwrite when a run is
    there already and neither was asked for: a second run never replaces the first by accident.
    """
    found = [] if resume else run_files(checkpoint, samples)
    if found and not overwrite:
        what = checkpoint.name if checkpoint.is_file() else f"{len(found)} samples in {samples}"
        raise CheckpointError(f"{checkpoint.parent} holds a run already ({what}): pass --resume to continue it, "
                              f"another --name to start one beside it, or --overwrite to replace it and its samples")
    return found


def clear_run(files: list[Path]) -> None:
    """Remove the files of the run --overwrite replaces (see check_new_run)."""
    for path in files:
        path.unlink(missing_ok=True)


def estimate_checkpoint_bytes(parts: dict, extra: int = 0) -> int:
    """About the bytes of a training checkpoint of `parts`, before training fills the optimisers: each network's
    parameters, twice more for every Adam optimiser's moments of them, plus `extra` (image pools ...)."""
    optimised = sum(state_bytes(group["params"]) for part in parts.values()
                    if isinstance(part, torch.optim.Optimizer) for group in part.param_groups)
    networks = sum(state_bytes(part.state_dict()) for part in parts.values() if isinstance(part, nn.Module))
    return networks + 2 * optimised + extra
