"""The checkpoint format: saving and loading it safely, building the networks a checkpoint describes, resuming.

A checkpoint is a dict of tensors and plain values written by torch.save and read back with weights_only=True,
so a shared checkpoint cannot run code. It records the spectrogram representation and the model config, so
convert.py rebuilds exactly the network that was trained and inverts exactly what training saw.
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import torch
from torch import nn

from model_cyclegan import RESIDUAL_SCALE, PatchDiscriminator, ResnetGenerator
from model_pix2pix import UnetGenerator
from outputs import atomic_file
from runtime import rng_state
from spectrogram import Representation

CHECKPOINT_FORMAT = 1
GENERATORS = ("resnet", "unet")  # the choices of train.py --generator
DIRECTIONS = {"pop2jazz": ("generator_ab", "jazz"), "jazz2pop": ("generator_ba", "pop")}  # -> (network, target)


class CheckpointError(ValueError):
    """A checkpoint that cannot be used for what was asked; the message names the file and says what to do."""


def save_checkpoint(path: Path, state: dict) -> None:
    """Write a checkpoint atomically: torch.save to a temporary file in the same folder, fsync, then rename.

    A crash at any point leaves the previous checkpoint at `path` intact. `state` must hold only tensors and
    plain Python values, so that `load_checkpoint` can read it with weights_only=True.
    """
    with atomic_file(path) as file:
        torch.save({"format": CHECKPOINT_FORMAT, **state}, file)


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict:
    """Read a checkpoint without running any code from it (torch.load with weights_only=True).

    Raises FileNotFoundError (with how to get one) when `path` is missing, and ValueError naming the file when
    it is not a checkpoint of this project or would need to execute code to load.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: train one with `uv run train.py` or pass --checkpoint")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(f"{path}: refused to load: it holds Python objects beyond tensors and plain values, "
                         f"which could run code; only load checkpoints written by train.py "
                         f"({str(error).splitlines()[0]})") from error
    except (RuntimeError, EOFError, OSError) as error:
        raise ValueError(f"{path}: not a readable checkpoint ({error})") from error
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a checkpoint of this project (format {CHECKPOINT_FORMAT})")
    return state


def build_generator(config: dict) -> nn.Module:
    """The generator a checkpoint's model config describes, so convert.py needs no flag to rebuild it.

    {"generator": "resnet", "width": int, "n_blocks": int, "upsample": str, "output": str, "residual_scale":
    float}: model_cyclegan.ResnetGenerator (also when "generator" is absent, as in checkpoints from before the
    U-Net); a config without "upsample", "output" or "residual_scale" (from before those options) is the
    paper's: transposed convolutions and a tanh output.
    {"generator": "unet", "width": int, "image_size": [n_bins, chunk_frames]}: the pix2pix U-Net
    (model_pix2pix.UnetGenerator) with CycleGAN's InstanceNorm and no dropout, as the authors' CycleGAN code
    uses it (--norm instance --no_dropout): dropout is pix2pix's noise source and would only blur the cycle.
    Raises ValueError for an unknown generator name or an image size the U-Net cannot take.
    """
    name = config.get("generator", "resnet")
    if name == "resnet":
        return ResnetGenerator(1, config["width"], config["n_blocks"], config.get("upsample", "transpose"),
                               config.get("output", "direct"), config.get("residual_scale", RESIDUAL_SCALE))
    if name == "unet":
        return UnetGenerator(1, config["width"], tuple(config["image_size"]), nn.InstanceNorm2d, dropout=0.0)
    raise ValueError(f"unknown generator {name!r}; this version knows {', '.join(GENERATORS)}")


def build_discriminator(config: dict) -> nn.Module:
    """The CycleGAN discriminator of a model config: the 70x70 PatchGAN of width config["disc_width"], with
    spectral normalisation where config["spectral_norm"] (absent in configs from before that option: off)."""
    return PatchDiscriminator(1, config["disc_width"], spectral_norm=config.get("spectral_norm", False))


def generator_from(state: dict, direction: str = "pop2jazz", device: torch.device | str = "cpu") -> nn.Module:
    """The generator of `direction` in a loaded CycleGAN checkpoint, in eval mode on `device`.

    Raises ValueError for an unknown direction.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}: use one of {', '.join(DIRECTIONS)}")
    generator = build_generator(state["model"])
    generator.load_state_dict(state[DIRECTIONS[direction][0]])
    return generator.to(device).eval()


def load_generator(path: Path, direction: str = "pop2jazz", device: torch.device | str = "cpu"
                   ) -> tuple[nn.Module, Representation]:
    """(generator in eval mode on `device`, Representation) from a train.py checkpoint.

    Raises FileNotFoundError / ValueError as `load_checkpoint` and `generator_from` do.
    """
    state = load_checkpoint(path, device)
    return generator_from(state, direction, device), Representation.from_dict(state["representation"])


# resuming a training run (train.py and simple_gan.py)

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


def resume(args: argparse.Namespace, path: Path, device: torch.device | str, session_options: set[str]) -> dict:
    """The checkpoint at `path` for --resume, with every setting it was started with put back into `args` (see
    `resume_settings`; a note is printed for each given option it overrides). Raises CheckpointError saying how
    to start a run instead when there is none."""
    try:
        state = load_checkpoint(path, device)
    except FileNotFoundError:
        raise CheckpointError(f"--resume: no checkpoint at {path}; train without --resume first, or say where the "
                              f"run is") from None
    except ValueError as error:
        raise CheckpointError(f"--resume: {error}") from error
    for note in resume_settings(args, state["args"], session_options):
        print(f"note: {note}")
    return state


def training_state(epoch: int, rep: Representation, model: dict, history: list[dict], args: argparse.Namespace,
                   parts: dict, **extra) -> dict:
    """What a training checkpoint holds: the epoch, representation, model config, loss history, settings, RNG
    state, the state_dict of every part (networks, optimisers, schedulers, image pools) and `extra` values."""
    return {"epoch": epoch, "representation": rep.to_dict(), "model": model, "history": history,
            "args": settings_of(args), "rng": rng_state(), **extra,
            **{name: part.state_dict() for name, part in parts.items()}}


def restore_parts(parts: dict, state: dict) -> None:
    """Load each part's state_dict from a checkpoint written by `training_state`."""
    for name, part in parts.items():
        part.load_state_dict(state[name])
