"""The checkpoint format: saving and loading it safely, building the networks a checkpoint describes, where a
command finds its checkpoint, named runs and resuming them.

A checkpoint is a dict of tensors and plain values written by torch.save and read back with weights_only=True,
so a shared checkpoint cannot run code. It records its kind (a train.py CycleGAN or a simple_gan.py GAN), the
spectrogram representation and the model config, so convert.py rebuilds exactly the network that was trained and
inverts exactly what training saw. A run named NAME keeps its checkpoint in checkpoints/NAME/latest.pt and its
samples in samples/NAME/.
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
# kind -> (what a message calls it, the script that writes it, the entries it cannot do without)
KINDS = {"cyclegan": ("CycleGAN", "train.py", ("representation", "model", "generator_ab", "generator_ba")),
         "simple_gan": ("simple_gan.py", "simple_gan.py", ("representation", "model", "generator", "discriminator"))}
GENERATOR_CONFIG = {"resnet": ("width", "n_blocks"), "unet": ("width", "image_size")}  # what build_generator reads
CHECKPOINTS, SAMPLES, LATEST = Path("checkpoints"), Path("samples"), "latest.pt"  # a run NAME: CHECKPOINTS/NAME/LATEST
GENERATORS_FILE = "generators.pt"  # beside LATEST: the run's generator-only export, to convert with and share
DEFAULT_RUN = "pop2jazz"  # the run train.py, convert.py and evaluate.py use without --name
BUNDLED_MODEL = Path(__file__).resolve().parent / "pretrained" / "pop2jazz.pt"  # the model that ships, an export


class CheckpointError(ValueError):
    """A checkpoint that cannot be used for what was asked; the message names the file and says what to do."""


def save_checkpoint(path: Path, state: dict) -> None:
    """Write a checkpoint atomically: torch.save to a temporary file in the same folder, fsync, then rename.

    A crash, a full disk or an interruption at any point leaves the previous checkpoint at `path` intact (a full
    or read-only disk raises outputs.OutputError naming `path`). `state` must hold only tensors and plain Python
    values, so that `load_checkpoint` can read it with weights_only=True; `training_state` gives it its "kind".
    """
    with atomic_file(path, state_bytes(state)) as file:
        torch.save({"format": CHECKPOINT_FORMAT, **state}, file)


def state_bytes(value) -> int:
    """About the bytes torch.save writes for `value`: its tensors' data (plain values add little)."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(state_bytes(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return sum(state_bytes(item) for item in value)
    return 0


def kind_of(state: dict) -> str | None:
    """"cyclegan" or "simple_gan": the saved kind, or for checkpoints from before kinds were saved, the one whose
    networks it holds; None for neither."""
    if state.get("kind") in KINDS:
        return state["kind"]
    if "generator_ab" in state:
        return "cyclegan"
    if "generator" in state and "fixed_noise" in state:
        return "simple_gan"
    return None


def load_checkpoint(path: Path, device: torch.device | str = "cpu", kind: str | None = None) -> dict:
    """Read a checkpoint without running any code from it (torch.load with weights_only=True).

    With `kind` ("cyclegan" or "simple_gan"), it must be one of that kind and complete: its representation and
    the entries that kind needs. Raises FileNotFoundError (with how to get one) when `path` is missing, and
    CheckpointError naming the file when it is not a checkpoint of this project, would need to execute code to
    load, is another kind ("X is a simple_gan.py checkpoint, not a CycleGAN one (train.py)") or is incomplete.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: train one with `uv run train.py` or pass --checkpoint")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(f"{path}: refused to load: it holds Python objects beyond tensors and plain values, "
                              f"which could run code; only load checkpoints written by train.py "
                              f"({str(error).splitlines()[0]})") from error
    except (RuntimeError, EOFError, OSError) as error:
        raise CheckpointError(f"{path}: not a readable checkpoint ({error})") from error
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a checkpoint of this project (format {CHECKPOINT_FORMAT}): a torch file "
                              f"from elsewhere; pass one written by train.py or simple_gan.py")
    if kind is not None:
        check_kind(state, kind, path)
    return state


def check_kind(state: dict, kind: str, path: Path) -> None:
    """Raise CheckpointError naming `path` unless `state` is a complete checkpoint of `kind` (see load_checkpoint)."""
    label, script, needed = KINDS[kind]
    found = kind_of(state)
    if found is None:
        raise CheckpointError(f"{path} holds neither a CycleGAN nor a simple GAN (none of their networks): pass a "
                              f"checkpoint written by {script}")
    if found != kind:
        raise CheckpointError(f"{path} is a {KINDS[found][0]} checkpoint, not a {label} one ({script}); pass a "
                              f"checkpoint written by {script}")
    missing = [name for name in needed if name not in state]
    if not missing:
        try:
            Representation.from_dict(state["representation"])
        except (ValueError, TypeError, AttributeError) as error:
            raise CheckpointError(f"{path}: incomplete checkpoint: its representation is not usable ({error}); "
                                  f"it was not written whole by {script}") from error
        config = state["model"] if isinstance(state["model"], dict) else {}
        needed_config = GENERATOR_CONFIG.get(config.get("generator", "resnet"), ()) if kind == "cyclegan" else \
            ("image_size", "latent_dim", "hidden")
        missing = [f"model {name}" for name in needed_config if name not in config]
    if missing:
        raise CheckpointError(f"{path}: incomplete checkpoint: no {', '.join(missing)}; it was not written whole "
                              f"by {script}")


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


def generator_from(state: dict, direction: str = "pop2jazz", device: torch.device | str = "cpu",
                   source: Path | str = "the checkpoint") -> nn.Module:
    """The generator of `direction` in a loaded CycleGAN checkpoint, in eval mode on `device`.

    Raises ValueError for an unknown direction, CheckpointError naming `source` when the saved weights do not
    fit the saved model config.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}: use one of {', '.join(DIRECTIONS)}")
    generator = build_generator(state["model"])
    try:
        generator.load_state_dict(state[DIRECTIONS[direction][0]])
    except RuntimeError as error:
        raise CheckpointError(f"{source}: its {DIRECTIONS[direction][0]} weights do not fit its model config "
                              f"{state['model']}: a damaged or edited checkpoint ({str(error).splitlines()[0]})") \
            from error
    return generator.to(device).eval()


def load_generator(path: Path, direction: str = "pop2jazz", device: torch.device | str = "cpu"
                   ) -> tuple[nn.Module, Representation]:
    """(generator in eval mode on `device`, Representation) from a train.py checkpoint.

    Raises FileNotFoundError / CheckpointError as `load_checkpoint` (of kind "cyclegan") and `generator_from` do.
    """
    state = load_checkpoint(path, device, "cyclegan")
    return generator_from(state, direction, device, path), Representation.from_dict(state["representation"])


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

    Raises FileNotFoundError saying how to get one, and naming the runs there are, when the run has none.
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
    raise FileNotFoundError(f"no checkpoint at {found}: train one with `uv run train.py --name {name}`, or pass "
                            f"--checkpoint{there}{older}")


def list_runs() -> list[str]:
    """The names of the runs under checkpoints/ that have a latest.pt, in name order."""
    return sorted(run.parent.name for run in CHECKPOINTS.glob(f"*/{LATEST}"))


def describe(path: Path, state: dict) -> str:
    """How a command names the checkpoint it uses: "the bundled model pretrained/pop2jazz.pt (...)" or "PATH
    (...)", with the network and the epoch it was saved at."""
    model = state["model"]
    network = f"{model.get('generator', 'resnet')} generator, width {model['width']}" + \
        (f", {model['n_blocks']} blocks" if model.get("generator", "resnet") == "resnet" else "")
    details = f"{network}, epoch {state.get('epoch', '?')}"
    if Path(path).resolve() == BUNDLED_MODEL:
        return f"the bundled model pretrained/{BUNDLED_MODEL.name} ({details}; see pretrained/README.md)"
    return f"{path} ({details})"


def export_generators(state: dict) -> dict:
    """The generator-only export of a CycleGAN training state, for conversion and sharing: both generators in
    float16 (2 bytes a parameter: 1.1 MB at width 16, 45 MB at the paper's 64), with the representation, model
    config, settings, epoch and loss history; without the discriminators, optimisers and image pools that only
    training needs (at the paper's size most of a checkpoint's 115 MB). Marked "generators_only": convert.py and
    evaluate.py load it as any CycleGAN checkpoint (load_state_dict casts back to float32), --resume refuses it."""
    halves = {name: {key: value.half() if value.is_floating_point() else value for key, value in state[name].items()}
              for name in ("generator_ab", "generator_ba")}
    kept = ("epoch", "representation", "model", "history", "args")
    return {"kind": "cyclegan", "generators_only": True, **{key: state[key] for key in kept if key in state}, **halves}


# resuming a training run (train.py and simple_gan.py)

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


def training_state(kind: str, epoch: int, rep: Representation, model: dict, history: list[dict],
                   args: argparse.Namespace, parts: dict, **extra) -> dict:
    """What a training checkpoint holds: its kind ("cyclegan", "simple_gan"), the epoch, representation, model
    config, loss history, settings, RNG state, the state_dict of every part (networks, optimisers, schedulers,
    image pools) and `extra` values."""
    return {"kind": kind, "epoch": epoch, "representation": rep.to_dict(), "model": model, "history": history,
            "args": settings_of(args), "rng": rng_state(), **extra,
            **{name: part.state_dict() for name, part in parts.items()}}


def restore_parts(parts: dict, state: dict) -> None:
    """Load each part's state_dict from a checkpoint written by `training_state`."""
    for name, part in parts.items():
        part.load_state_dict(state[name])


# named runs: never start over one by accident

# what training writes for a person
RUN_OUTPUTS = ("epoch_*", "losses.csv", "losses.png", "transfer_rate.csv", "transfer_rate.png", "index.html")


def run_files(checkpoint: Path, samples: Path) -> list[Path]:
    """The files of a run already at `checkpoint` and in `samples`: the checkpoint, its generator-only export and
    the RUN_OUTPUTS."""
    found = [path for path in (checkpoint, checkpoint.with_name(GENERATORS_FILE)) if path.is_file()]
    return found + sorted(path for pattern in RUN_OUTPUTS for path in Path(samples).glob(pattern) if path.is_file())


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
