"""The checkpoint format: saving and loading it safely, its kinds, building the networks a checkpoint describes,
the generator-only export. Where a run keeps its checkpoints, and resuming one, are runs.py's.

A checkpoint is a dict of tensors and plain values written by torch.save and read back with weights_only=True,
so a shared checkpoint cannot run code. It records its kind (a train.py CycleGAN or a simple_gan.py GAN), the
spectrogram representation and the model config, so convert.py rebuilds exactly the network that was trained and
inverts exactly what training saw.
"""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import torch
from torch import nn

from model_cyclegan import RESIDUAL_SCALE, PatchDiscriminator, ResnetGenerator
from model_pix2pix import UnetGenerator
from pop2jazz.conversion import at_reference_level
from pop2jazz.errors import InputError, MissingFileError, UserError
from pop2jazz.output_files import atomic_file
from pop2jazz.spectrogram import Representation

CHECKPOINT_FORMAT = 1
GENERATORS = ("resnet", "unet")  # the choices of train.py --generator
DIRECTIONS = {"pop2jazz": ("generator_ab", "jazz"), "jazz2pop": ("generator_ba", "pop")}  # -> (network, target)
# kind -> (what a message calls it, the script that writes it, the entries it cannot do without)
KINDS = {"cyclegan": ("CycleGAN", "train.py", ("representation", "model", "generator_ab", "generator_ba")),
         "simple_gan": ("simple_gan.py", "simple_gan.py", ("representation", "model", "generator", "discriminator"))}
GENERATOR_CONFIG = {"resnet": ("width", "n_blocks"), "unet": ("width", "image_size")}  # what build_generator reads
BUNDLED_MODEL = Path(__file__).resolve().parent.parent / "pretrained" / "pop2jazz.pt"  # the model that ships, an export


class CheckpointError(UserError, ValueError):
    """A checkpoint that cannot be used for what was asked; the message names the file and says what to do."""


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The CycleGAN networks of a run, as its checkpoints record them ("model", a plain dict: to_dict/from_dict).

    generator: "resnet", model_cyclegan.ResnetGenerator (Zhu et al. 2017, appendix 7.2: c7s1-w, d2w, d4w,
    n_blocks x R4w, u2w, uw, c7s1-1), or "unet", the pix2pix U-Net (model_pix2pix.UnetGenerator) with CycleGAN's
    InstanceNorm and no dropout, as the authors' CycleGAN code uses it (--norm instance --no_dropout): dropout is
    pix2pix's noise source and would only blur the cycle. width: the generator's first layer's channels (64 in the
    paper). n_blocks: residual blocks (9 in the paper; resnet only). image_size: [n_bins, chunk_frames] of the
    training chunks, which the U-Net is built for. disc_width: the PatchGAN's first layer (C64-C128-C256-C512 at 64).
    upsample ("transpose" or "resize"), output ("direct" tanh or "residual" input + residual_scale x tanh) and
    spectral_norm on the discriminators are train.py's sound options.

    The level and data levers (train.py's flags, issue-24 A/B): reference_level_db, the training chunks' median
    level (spectrogram.image_level_db, dB re a full-scale bin; every new run records it); level_match, whether
    conversion brings each window to that reference first (conversion.AtReferenceLevel); random_gain_db, the
    largest random gain (dB) added to every real training chunk; random_windows, training on windows at random
    frame offsets in each song instead of the fixed chunks (dataset.RandomWindows); pitch_shift_semitones and
    time_stretch, the largest random pitch shift (semitones) and tempo change (a fraction) of the real training
    windows (augment.pitch_time); diffaugment, DiffAugment before every discriminator call (augment.diff_augment).

    Defaults for checkpoints from before an option: no "generator" is a ResNet; no "upsample", "output" or
    "spectral_norm" is the paper's transposed convolutions, tanh output and plain discriminator; no
    "residual_scale" is RESIDUAL_SCALE; no lever is off, and no reference level is known. width, and n_blocks
    or image_size for its generator, have no default: a config without them is incomplete (check_kind says so).
    """

    width: int
    n_blocks: int | None = None
    generator: str = "resnet"
    disc_width: int = 64
    image_size: tuple[int, int] | None = None
    upsample: str = "transpose"
    output: str = "direct"
    residual_scale: float = RESIDUAL_SCALE
    spectral_norm: bool = False
    reference_level_db: float | None = None
    level_match: bool = False
    random_gain_db: float = 0.0
    random_windows: bool = False
    pitch_shift_semitones: float = 0.0
    time_stretch: float = 0.0
    diffaugment: bool = False

    @classmethod
    def from_dict(cls, values: dict | ModelConfig) -> ModelConfig:
        """The config a checkpoint's "model" dict describes, defaults filled in; unknown keys are ignored."""
        if isinstance(values, ModelConfig):
            return values
        known = {field.name for field in dataclasses.fields(cls)}
        config = {key: value for key, value in values.items() if key in known}
        if config.get("image_size") is not None:
            config["image_size"] = tuple(config["image_size"])
        return cls(**config)

    def to_dict(self) -> dict:
        """The plain dict a checkpoint holds (image_size as a list, as torch.save keeps it)."""
        values = dataclasses.asdict(self)
        values["image_size"] = None if self.image_size is None else list(self.image_size)
        return values


def save_checkpoint(path: Path, state: dict, replace: bool = True) -> None:
    """Write a checkpoint atomically: torch.save to a temporary file in the same folder, fsync, then rename.

    A crash, a full disk or an interruption at any point leaves the previous checkpoint at `path` intact (a full
    or read-only disk raises output_files.OutputError naming `path`). `state` must hold only tensors and plain Python
    values, so that `load_checkpoint` can read it with weights_only=True; `training_state` gives it its "kind".
    With `replace` False (a run's first save, not asked to overwrite), a file another run wrote at `path`
    meanwhile is kept and WouldOverwriteError raised (output_files.atomic_file).
    """
    with atomic_file(path, state_bytes(state), replace) as file:
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
    the entries that kind needs. Raises MissingFileError (with how to get one) when `path` is missing, and
    CheckpointError naming the file when it is not a checkpoint of this project, would need to execute code to
    load, is another kind ("X is a simple_gan.py checkpoint, not a CycleGAN one (train.py)") or is incomplete.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"no checkpoint at {path}: train one with `uv run train.py` or pass --checkpoint")
    check_not_text(path)
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(f"{path}: refused to load: it holds Python objects beyond tensors and plain values, "
                              f"which could run code; only load checkpoints written by train.py "
                              f"({str(error).splitlines()[0]})") from error
    except (RuntimeError, EOFError, OSError) as error:
        raise CheckpointError(f"{path}: not a readable checkpoint ({error})") from error
    check_format(state, path)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a checkpoint of this project (format {CHECKPOINT_FORMAT}): a torch file "
                              f"from elsewhere; pass one written by train.py or simple_gan.py")
    if kind is not None:
        check_kind(state, kind, path)
    return state


LFS_POINTER = b"version https://git-lfs.github.com/spec/"  # how a Git LFS pointer file starts


def check_not_text(path: Path) -> None:
    """Raise CheckpointError naming `path` when it is a text file rather than a torch file: a Git LFS pointer
    (the repository was cloned without `git lfs`), an HTML page (a download that saved an error page) or other
    text. torch files are zip archives or pickles, which hold bytes no text has."""
    with open(path, "rb") as file:
        head = file.read(4096)
    if head.startswith(LFS_POINTER):
        raise CheckpointError(f"{path} is a Git LFS pointer (a small text file), not the model: run `git lfs pull` "
                              f"or download it again")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(head) - 4:  # not just a character cut at the end of the 4096 bytes
            return
        text = head[: error.start].decode("utf-8")
    if "\0" in text or any(ord(character) < 32 and character not in "\t\n\r\f" for character in text):
        return
    lowered = text.lstrip().lower()
    if lowered.startswith(("<!doctype html", "<html", "<?xml", "<head", "<body")) or "<html" in lowered:
        raise CheckpointError(f"{path} is an HTML page (a saved web or error page, {path.stat().st_size} bytes), "
                              f"not a checkpoint: download it again")
    raise CheckpointError(f"{path} is a text file ({path.stat().st_size} bytes), not a checkpoint: pass one "
                          f"written by train.py or simple_gan.py, or download it again")


def check_format(state, path: Path) -> None:
    """Raise CheckpointError naming `path` when `state` is a checkpoint of a newer pop2jazz (a format number above
    CHECKPOINT_FORMAT)."""
    saved = state.get("format") if isinstance(state, dict) else None
    if isinstance(saved, int) and not isinstance(saved, bool) and saved > CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} was written by a newer pop2jazz (checkpoint format {saved}; this version "
                              f"reads {CHECKPOINT_FORMAT}): update pop2jazz")


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


def build_generator(config: ModelConfig | dict) -> nn.Module:
    """The generator a model config describes (see ModelConfig), so convert.py needs no flag to rebuild it.
    Raises CheckpointError for an unknown generator name, ValueError for an image size the U-Net cannot take."""
    config = ModelConfig.from_dict(config)
    if config.generator == "resnet":
        return ResnetGenerator(1, config.width, config.n_blocks, config.upsample, config.output, config.residual_scale)
    if config.generator == "unet":
        return UnetGenerator(1, config.width, config.image_size, nn.InstanceNorm2d, dropout=0.0)
    raise CheckpointError(f"unknown generator {config.generator!r}; this version knows {', '.join(GENERATORS)}")


def build_discriminator(config: ModelConfig | dict) -> nn.Module:
    """The CycleGAN discriminator of a model config: the 70x70 PatchGAN of width disc_width, with spectral
    normalisation where spectral_norm."""
    config = ModelConfig.from_dict(config)
    return PatchDiscriminator(1, config.disc_width, spectral_norm=config.spectral_norm)


def generator_from(state: dict, direction: str = "pop2jazz", device: torch.device | str = "cpu",
                   source: Path | str = "the checkpoint", level_match: bool | None = None) -> nn.Module:
    """The generator of `direction` in a loaded CycleGAN checkpoint, in eval mode on `device`; when the model
    config says level_match (or `level_match` is True), wrapped in conversion.AtReferenceLevel at its
    reference_level_db, which `level_match` False leaves out.

    Raises InputError for an unknown direction or a level match asked of a checkpoint that records no
    reference level, CheckpointError naming `source` when the saved weights do not fit the saved model config.
    """
    if direction not in DIRECTIONS:
        raise InputError(f"unknown direction {direction!r}: use one of {', '.join(DIRECTIONS)}")
    generator = build_generator(state["model"])
    try:
        generator.load_state_dict(state[DIRECTIONS[direction][0]])
    except RuntimeError as error:
        raise CheckpointError(f"{source}: its {DIRECTIONS[direction][0]} weights do not fit its model config "
                              f"{state['model']}: a damaged or edited checkpoint ({str(error).splitlines()[0]})") \
            from error
    return at_reference_level(generator.to(device).eval(), reference_to_match(state, level_match, source),
                              Representation.from_dict(state["representation"]))


def reference_to_match(state: dict, level_match: bool | None = None, source: Path | str = "the checkpoint"
                       ) -> float | None:
    """The level (dB) a loaded checkpoint's generator hears every window at: its reference_level_db when its
    config says level_match (or `level_match` is True), None when it does not (or `level_match` is False).
    Raises InputError naming `source` for a level match asked of a checkpoint that records no reference."""
    config = ModelConfig.from_dict(state["model"])
    if not (config.level_match if level_match is None else level_match):
        return None
    if config.reference_level_db is None:
        raise InputError(f"{source} records no reference level to match: convert without --level-match, or "
                         f"record it with `uv run experiments/record_reference_level.py --checkpoint {source} "
                         f"--data <its training data>`")
    return config.reference_level_db


def describe(path: Path, state: dict) -> str:
    """How a command names the checkpoint it uses: "the bundled model pretrained/pop2jazz.pt (...)" or "PATH
    (...)", with the network and the epoch it was saved at."""
    config = ModelConfig.from_dict(state["model"])
    network = f"{config.generator} generator, width {config.width}" + \
        (f", {config.n_blocks} block{'s' * (config.n_blocks != 1)}" if config.generator == "resnet" else "")
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
