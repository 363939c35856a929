"""Train the pop <-> jazz CycleGAN (Zhu et al. 2017, arXiv 1703.10593) on chunks from audio_preprocessing.py.

    uv run train.py                                       # paper-size model, for a GPU: the run "pop2jazz"
    uv run train.py --width 16 --n-blocks 3 --epochs 10 --steps-per-epoch 50 --name demo  # a CPU-sized demo
    uv run train.py --resume                              # carry on from checkpoints/pop2jazz/latest.pt

The recipe is the paper's (section 4, appendix 7): LSGAN losses, lambda_cycle = 10, identity loss weighted
lambda_identity * lambda_cycle = 5, an image pool of 50 fakes per discriminator, Adam (lr 2e-4, betas 0.5/0.999),
constant learning rate for the first half of the epochs and a linear decay to zero over the second, batch size 1.
CUDA with bf16 autocast when there is a GPU, otherwise the CPU: in bf16 autocast where it does bf16 natively, else
in float32 (--bf16 / --no-bf16 to choose); several GPUs (or CPU processes) with `torchrun --nproc_per_node=N train.py`
(compute.py); --max-minutes for a time budget. After every epoch: checkpoints/NAME/latest.pt
(written atomically) with checkpoints/NAME/generators.pt beside it (both generators in half precision, what
convert.py needs, to share), samples/NAME/epoch_NNN.wav (a held-out pop song turned into jazz) with epoch_NNN.png (its
spectrogram before and after), samples/NAME/losses.csv / losses.png, and samples/NAME/index.html, the run's page
that shows them all. A run never starts over another one: that takes --resume, another --name, or --overwrite.
The level and data levers (--level-match, --random-gain, --random-windows, --pitch-shift, --time-stretch,
--diffaugment) are off by default and saved in the checkpoint when on; docs/training.md says what each does.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from model_cyclegan import OUTPUTS, RESIDUAL_SCALE, UPSAMPLING, ImagePool, init_weights
from pop2jazz import commands, compute
from pop2jazz.commands import non_negative_float, non_negative_int, positive_float, positive_int
from pop2jazz.audio_files import AudioError
from pop2jazz.checkpoint import (
    GENERATORS,
    ModelConfig,
    build_discriminator,
    build_generator,
    export_generators,
    save_checkpoint,
)
from pop2jazz.augment import diff_augment, pitch_time, random_gain
from pop2jazz.conversion import at_reference_level
from pop2jazz.dataset import ChunkFolder, DataError, RandomWindows, UnpairedChunks, listed_songs
from pop2jazz.epoch_outputs import run_details, sample_bytes, write_run_page, write_sample
from pop2jazz.judge import TransferRateLog
from pop2jazz.output_files import check_writable
from pop2jazz.plots import write_loss_log
from pop2jazz.runs import (
    CHECKPOINTS,
    DEFAULT_RUN,
    GENERATORS_FILE,
    LATEST,
    SAMPLES,
    add_run_options,
    check_batch_size,
    check_new_run,
    clear_run,
    estimate_checkpoint_bytes,
    explicit_options,
    restore_parts,
    resume,
    training_state,
)
from pop2jazz.spectrogram import Representation, image_level_db

LOSSES = ("loss_g_gan", "loss_cycle", "loss_identity", "loss_d_a", "loss_d_b")
# options a resumed run takes from this invocation; every other setting comes back from the checkpoint
SESSION_OPTIONS = {"data", "name", "checkpoint_dir", "samples_dir", "device", "workers", "compile", "channels_last",
                   "bf16", "max_minutes", "stop_after", "eval_every", "resume", "overwrite"}
TIMED_STEPS = 3  # steps timed before estimating how long the run takes on a CPU
SLOW_RUN_SECONDS = 3600  # on a CPU, an estimate above this prints the CPU-sized recipe
CPU_RECIPE = "uv run train.py --width 16 --n-blocks 3 --epochs 10 --steps-per-epoch 50 --name demo"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--data", type=Path, default=Path("data"), help="folder with pop_train/, jazz_train/, pop_val/ "
        "(default: data)")
    add_run_options(parser, DEFAULT_RUN)  # --name, --resume, --overwrite
    add("--checkpoint-dir", type=Path, default=None, help="checkpoint folder, instead of checkpoints/NAME")
    add("--samples-dir", type=Path, default=None, help="samples folder, instead of samples/NAME")
    add("--epochs", type=positive_int, default=200, help="half at constant lr, half decaying to 0 (default: 200; with "
        "--resume, the saved number unless given)")
    add("--batch-size", type=positive_int, default=1, help="default: 1, as in the paper")
    add("--generator", choices=GENERATORS, default="resnet", help="both generators: resnet (Zhu et al. 2017) or "
        "unet (the pix2pix U-Net, Isola et al. 2017, depth from the chunk size; ignores --n-blocks); saved in the "
        "checkpoint for convert.py (default: resnet)")
    add("--width", type=positive_int, default=64, help="generator width, 64 in the paper (default: 64)")
    add("--n-blocks", type=non_negative_int, default=9, help="generator residual blocks, 9 in the paper (default: 9)")
    add("--disc-width", type=positive_int, default=None, help="discriminator width (default: same as --width)")
    add("--upsample", choices=UPSAMPLING, default="transpose", help="ResNet generator up-sampling: transpose "
        "(stride-2 transposed convolutions, the paper's) or resize (nearest-neighbour x2 then a 3x3 convolution, "
        "Odena et al. 2016: no checkerboard pattern) (default: transpose)")
    add("--output", choices=OUTPUTS, default="direct", help="ResNet generator output: direct (tanh, the paper's) "
        "or residual (a gain of at most +-25 dB applied to the input spectrogram, starting as the identity) "
        "(default: direct)")
    add("--spectral-norm", action="store_true", help="spectral normalisation of every discriminator convolution "
        "(Miyato et al. 2018)")
    add("--level-match", action="store_true", help="convert.py brings every window to the training chunks' median "
        "level before the generator and restores its level after (the reference is saved in the checkpoint; a loud "
        "modern master then meets the generator at a level it knows)")
    add("--random-gain", type=non_negative_float, default=0.0, metavar="DB", help="add a gain drawn from +-DB dB to "
        "every real training chunk of both domains (default: 0 = none; 12 is the A/B's setting)")
    add("--random-windows", action="store_true", help="train on windows at random frame offsets in each song "
        "instead of the fixed chunks")
    add("--pitch-shift", type=non_negative_float, default=0.0, metavar="SEMITONES", help="shift every real "
        "training window by up to +-SEMITONES (default: 0; 2 is the A/B's setting)")
    add("--time-stretch", type=non_negative_float, default=0.0, metavar="FRACTION", help="change every real "
        "training window's tempo by up to +-FRACTION (default: 0; 0.08 is the A/B's setting)")
    add("--diffaugment", action="store_true", help="DiffAugment (Zhao et al. 2020): random time shift, time and "
        "frequency cut-out and gain on every discriminator input, real and fake alike")
    add("--steps-per-epoch", type=non_negative_int, default=0,
        help="cap on steps per epoch; 0 = every chunk (default: 0)")
    add("--lr", type=positive_float, default=2e-4, help="Adam learning rate (default: 2e-4)")
    add("--lambda-cycle", type=non_negative_float, default=10.0, help="weight of the L1 cycle loss (default: 10)")
    add("--lambda-identity", type=non_negative_float, default=0.5, help="identity loss weight as a fraction of "
        "lambda_cycle (default: 0.5)")
    add("--pool-size", type=non_negative_int, default=50, help="image_pool size per discriminator (default: 50)")
    add("--griffin-lim-iters", type=non_negative_int, default=32, help="for the sample WAVs (default: 32)")
    add("--seed", type=non_negative_int, default=0, help="default: 0")
    compute.add_arguments(add)  # --bf16, --max-minutes, --workers, --compile, --channels-last
    add("--device", default="auto", help="auto (CUDA when available), cpu or cuda (default: auto)")
    add("--stop-after", type=non_negative_int, default=0,
        help="stop after this many epochs in this run, to split a long "
        "run into sessions; carry on with --resume (default: 0 = run to --epochs)")
    add("--eval-every", type=non_negative_int, default=0,
        help="every N epochs, log the style transfer rate of the pop_val "
        "chunks (evaluate.py's genre classifier, no Griffin-Lim) to <samples-dir>/transfer_rate.csv; 0 = never "
        "(default: 0)")
    args = parser.parse_args(argv)
    args.given = explicit_options(parser, argv)
    args.disc_width = args.disc_width or args.width
    args.checkpoint_dir = args.checkpoint_dir or CHECKPOINTS / args.name
    args.samples_dir = args.samples_dir or SAMPLES / args.name
    if args.generator == "unet" and {"upsample", "output"} & args.given:
        parser.error("--upsample and --output shape the ResNet generator; the U-Net has its own (leave them out)")
    return args


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: 0 when training finished, 1 on a user error, 2 on a non-finite loss, 130 / 143
    when interrupted (Ctrl-C / SIGTERM)."""
    return commands.run_command(train, parse_args(argv),
                               interrupted="the checkpoint holds the last finished epoch; carry on with --resume")


class LinearDecay:
    """Learning-rate factor: 1 for the first `constant` epochs, then linearly down towards 0 over `decay` epochs.

    Zhu et al. 2017 section 4 (100 + 100 epochs); the form of the reference implementation's 'linear' policy.
    """

    def __init__(self, constant: int, decay: int):
        self.constant, self.decay = constant, decay

    def __call__(self, epoch: int) -> float:
        return 1.0 - max(0, epoch + 1 - self.constant) / float(self.decay + 1)


def load_data(args: argparse.Namespace, state: dict | None
              ) -> tuple[ChunkFolder, ChunkFolder, ChunkFolder | None, Representation]:
    """(pop_train, jazz_train, pop_val or None, representation) of args.data; raises DataError when the two
    domains, or the data and a resumed checkpoint, disagree on the representation."""
    folder_a, folder_b = ChunkFolder(args.data / "pop_train"), ChunkFolder(args.data / "jazz_train")
    val = ChunkFolder(args.data / "pop_val") if any((args.data / "pop_val").glob("*.npy")) else None
    rep = folder_a.representation
    if folder_b.representation != rep:
        raise DataError(f"{folder_a.folder} and {folder_b.folder} were made with different settings; run "
                        f"audio_preprocessing.py again")
    if state is not None and Representation.from_dict(state["representation"]) != rep:
        raise DataError(f"the resumed run was trained on another representation than {args.data}")
    return folder_a, folder_b, val, rep


def build_cyclegan(config: ModelConfig, args: argparse.Namespace, device: torch.device) -> dict:
    """The parts of a CycleGAN run, by the names its checkpoint uses: both generators and discriminators
    (weights from N(0, 0.02)), both Adam optimisers with their LinearDecay schedules, and both image pools."""
    generator_ab, generator_ba = (init_weights(build_generator(config)).to(device) for _ in range(2))
    discriminator_a, discriminator_b = (init_weights(build_discriminator(config)).to(device) for _ in range(2))
    optimizer_g = torch.optim.Adam(itertools.chain(generator_ab.parameters(), generator_ba.parameters()),
                                   args.lr, betas=(0.5, 0.999))
    optimizer_d = torch.optim.Adam(itertools.chain(discriminator_a.parameters(), discriminator_b.parameters()),
                                   args.lr, betas=(0.5, 0.999))
    decay = LinearDecay(args.epochs // 2, args.epochs - args.epochs // 2)
    return {"generator_ab": generator_ab, "generator_ba": generator_ba, "discriminator_a": discriminator_a,
            "discriminator_b": discriminator_b, "optimizer_g": optimizer_g, "optimizer_d": optimizer_d,
            "scheduler_g": torch.optim.lr_scheduler.LambdaLR(optimizer_g, decay),
            "scheduler_d": torch.optim.lr_scheduler.LambdaLR(optimizer_d, decay),
            "image_pool_a": ImagePool(args.pool_size), "image_pool_b": ImagePool(args.pool_size)}


def restore_run(parts: dict, state: dict, epochs: int) -> tuple[int, list[dict]]:
    """Load every part and the RNG state from a checkpoint: (first epoch to train, loss history so far).

    The schedules then follow `epochs`, which --epochs may have extended, from the next epoch on.
    """
    restore_parts(parts, state)
    for name in ("scheduler_g", "scheduler_d"):
        scheduler = parts[name]
        decay = scheduler.lr_lambdas[0]  # load_state_dict restored the saved schedule's lengths: set them anew
        decay.__init__(epochs // 2, epochs - epochs // 2)
        for group, base_lr in zip(scheduler.optimizer.param_groups, scheduler.base_lrs):
            group["lr"] = base_lr * decay(scheduler.last_epoch)  # LambdaLR applies a new schedule only at its step
    compute.set_rng_state(state["rng"])
    return state["epoch"] + 1, state["history"]


def unchanged(images: torch.Tensor) -> torch.Tensor:
    """The images themselves: what the discriminators see without --diffaugment."""
    return images


def generator_losses(nets: dict, real_a: torch.Tensor, real_b: torch.Tensor, args: argparse.Namespace,
                     d_augment=unchanged
                     ) -> tuple[torch.Tensor, list[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """The generators' objective (Zhu et al. 2017 eq. 3 with section 4's least-squares GAN loss and section 5.2's
    identity loss; the reference code's backward_G): (total, [gan, cycle, identity], (fake_a, fake_b)).
    `d_augment` (augment.diff_augment with --diffaugment) comes between every fake and its discriminator."""
    fake_b, fake_a = nets["generator_ab"](real_a), nets["generator_ba"](real_b)
    pred_b, pred_a = nets["discriminator_b"](d_augment(fake_b)), nets["discriminator_a"](d_augment(fake_a))
    gan = nn.functional.mse_loss(pred_b, torch.ones_like(pred_b)) + \
        nn.functional.mse_loss(pred_a, torch.ones_like(pred_a))
    cycle = nn.functional.l1_loss(nets["generator_ba"](fake_b), real_a) + \
        nn.functional.l1_loss(nets["generator_ab"](fake_a), real_b)
    identity = nn.functional.l1_loss(nets["generator_ab"](real_b), real_b) + \
        nn.functional.l1_loss(nets["generator_ba"](real_a), real_a)
    total = gan + args.lambda_cycle * cycle + args.lambda_identity * args.lambda_cycle * identity
    return total, [gan, cycle, identity], (fake_a, fake_b)


def discriminator_loss(discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor, d_augment=unchanged
                       ) -> torch.Tensor:
    """Least-squares loss of one discriminator, real -> 1 and fake -> 0, halved so that D learns at half G's pace
    (Zhu et al. 2017 section 4; the reference code's backward_D_basic); both through `d_augment`."""
    pred_real, pred_fake = discriminator(d_augment(real)), discriminator(d_augment(fake))
    return 0.5 * (nn.functional.mse_loss(pred_real, torch.ones_like(pred_real))
                  + nn.functional.mse_loss(pred_fake, torch.zeros_like(pred_fake)))


def cyclegan_step(nets: dict, parts: dict, real_a: torch.Tensor, real_b: torch.Tensor, args: argparse.Namespace,
                  autocast: torch.autocast, d_augment=unchanged) -> torch.Tensor:
    """One optimisation step of both generators, then both discriminators on fakes from the image pools.

    nets: the networks as called (possibly compiled or DDP-wrapped); parts: the optimisers and pools (see
    `build_cyclegan`); real_a, real_b: pop and jazz batches [B, 1, n_bins, frames]; autocast: bf16 or disabled.
    Returns the detached losses [5] in LOSSES order. Under bf16 autocast the convolutions run in bf16 while
    autocast computes the L1 and MSE losses in float32; the fakes enter the image pools as float32, and the
    optimisers update float32 weights. `d_augment` is applied to every discriminator input (DiffAugment).
    """
    for name in ("discriminator_a", "discriminator_b"):
        nets[name].requires_grad_(False)
    with autocast:
        total, losses_g, (fake_a, fake_b) = generator_losses(nets, real_a, real_b, args, d_augment)
    parts["optimizer_g"].zero_grad(set_to_none=True)
    total.backward()
    parts["optimizer_g"].step()
    for name in ("discriminator_a", "discriminator_b"):
        nets[name].requires_grad_(True)
    with autocast:
        loss_d_a = discriminator_loss(nets["discriminator_a"], real_a,
                                      parts["image_pool_a"].query(fake_a.detach().float()), d_augment)
        loss_d_b = discriminator_loss(nets["discriminator_b"], real_b,
                                      parts["image_pool_b"].query(fake_b.detach().float()), d_augment)
    parts["optimizer_d"].zero_grad(set_to_none=True)
    (loss_d_a + loss_d_b).backward()
    parts["optimizer_d"].step()
    return torch.stack([*losses_g, loss_d_a, loss_d_b]).detach()


def transfer_rate_log(args: argparse.Namespace, folder_a: ChunkFolder, folder_b: ChunkFolder,
                      val: ChunkFolder | None, rep: Representation) -> TransferRateLog:
    """The --eval-every log of the held-out pop chunks' transfer rate; raises DataError when it cannot be made."""
    if val is None:
        raise DataError(f"--eval-every needs held-out pop songs: {args.data / 'pop_val'} is missing")
    try:
        songs = [listed_songs(folder.folder, "--eval-every 0") for folder in (folder_a, folder_b)]
        return TransferRateLog(*songs, val, args.samples_dir / "transfer_rate.csv", rep)
    except ValueError as error:
        raise DataError(f"--eval-every: {error}") from error


def write_epoch_outputs(generator_ab: nn.Module, val: ChunkFolder | None, rep: Representation,
                        args: argparse.Namespace, epoch: int, history: list[dict],
                        transfer_log: TransferRateLog | None) -> None:
    """After an epoch: the converted held-out sample, the transfer rate (every --eval-every epochs), the losses and
    the run's page, samples/NAME/index.html."""
    provenance = {"tool": "train.py", "direction": "pop2jazz", "checkpoint": str(args.checkpoint_dir / LATEST),
                  "epoch": epoch}
    try:
        write_sample(generator_ab, val, rep, args.samples_dir, epoch, args.griffin_lim_iters, provenance)
    except AudioError as error:
        warnings.warn(f"no sample this epoch: {error}")
    if transfer_log is not None and epoch % args.eval_every == 0:
        transfer_log(generator_ab, epoch)
    write_loss_log(history, args.samples_dir, LOSSES, "CycleGAN losses")
    write_run_page(args.samples_dir, f"pop2jazz run {args.name}", run_details(args, epoch), history)


def format_duration(seconds: float) -> str:
    """'40 s', '12 min', '3.5 h' or '6.9 days'."""
    for unit, size, digits in (("days", 86400, 1), ("h", 3600, 1), ("min", 60, 0)):
        if seconds >= 2 * size:
            return f"{seconds / size:.{digits}f} {unit}"
    return f"{seconds:.0f} s"


def slow_run_note(seconds_per_step: float, steps: int, device: torch.device) -> str | None:
    """On a CPU, when `steps` steps of `seconds_per_step` take longer than SLOW_RUN_SECONDS: what the run will
    take and the CPU-sized recipe to try instead; None otherwise."""
    total = seconds_per_step * steps
    if device.type != "cpu" or total <= SLOW_RUN_SECONDS:
        return None
    return (f"note: {seconds_per_step:.1f} s per step on the CPU: the {steps} steps of this run take about "
            f"{format_duration(total)}. This model size is for a GPU; for a look at the whole pipeline on a CPU "
            f"try the README's CPU-sized demo (about 15 min on 2 cores): {CPU_RECIPE}. Carrying on.")


def new_model_config(args: argparse.Namespace, rep: Representation, reference_level_db: float | None = None
                     ) -> ModelConfig:
    """The model config of a new run, from its flags and its training chunks' median level (`reference_level`);
    its checkpoints save it and checkpoint.build_generator / generator_from rebuild the networks from it."""
    return ModelConfig(generator=args.generator, width=args.width, n_blocks=args.n_blocks, disc_width=args.disc_width,
                       image_size=(rep.n_bins, rep.chunk_frames), upsample=args.upsample, output=args.output,
                       residual_scale=RESIDUAL_SCALE, spectral_norm=args.spectral_norm,
                       reference_level_db=reference_level_db, level_match=args.level_match,
                       random_gain_db=args.random_gain, random_windows=args.random_windows,
                       pitch_shift_semitones=args.pitch_shift, time_stretch=args.time_stretch,
                       diffaugment=args.diffaugment)


def reference_level(folders: list[ChunkFolder]) -> float:
    """The median level (spectrogram.image_level_db, dB re a full-scale bin) of every chunk of `folders`: the
    level conversion.AtReferenceLevel brings a song's windows to."""
    levels = [float(image_level_db(folder[index], folder.representation)) for folder in folders
              for index in range(len(folder))]
    return float(np.median(levels))


def real_augment(config: ModelConfig, rep: Representation):
    """What happens to every real training batch [B, 1, n_bins, frames] before the step: augment.pitch_time,
    then augment.random_gain, as `config` sets them (nothing with the levers off)."""
    def augment(images: torch.Tensor) -> torch.Tensor:
        images = pitch_time(images, config.pitch_shift_semitones, config.time_stretch)
        return random_gain(images, config.random_gain_db, rep)
    return augment


def discriminator_augment(config: ModelConfig, rep: Representation):
    """What every discriminator input goes through: augment.diff_augment with config.diffaugment, else nothing."""
    return functools.partial(diff_augment, rep=rep) if config.diffaugment else unchanged


def prepare_outputs(args: argparse.Namespace, parts: dict, rep: Representation, old_run: list[Path]) -> None:
    """Before the first step, not after an epoch of work: the folders must be writable with room for a checkpoint
    and an epoch's samples (raises output_files.OutputError saying which flag to change); then an --overwrite run's
    old files go."""
    pools = 2 * args.pool_size * args.batch_size * rep.n_bins * rep.chunk_frames * 4
    check_writable(args.checkpoint_dir, estimate_checkpoint_bytes(parts, pools),
                   "pass --checkpoint-dir (or --name) with a writable place")
    check_writable(args.samples_dir, sample_bytes(rep), "pass --samples-dir with a writable place")
    clear_run(old_run)


def train_epoch(epoch: int, nets: dict, parts: dict, batches, args: argparse.Namespace, device: torch.device,
                ranks: compute.Ranks, bar: tqdm, augment=unchanged, d_augment=unchanged) -> dict:
    """One epoch of cyclegan_step over `batches` ((pop, jazz) pairs from the loader, each through `augment`, with
    `d_augment` before every discriminator): its history row, the mean of each loss (over all ranks), the learning
    rate it trained with and its seconds. Raises compute.NonFiniteLoss at the first NaN or infinite loss. After
    the first TIMED_STEPS steps of a run, a slow one says so."""
    autocast = torch.autocast(device.type, torch.bfloat16, enabled=args.bf16)
    sums, start, steps = torch.zeros(len(LOSSES), dtype=torch.float64), time.perf_counter(), 0
    bar.set_description(f"epoch {epoch}/{args.epochs}")
    for steps, (real_a, real_b) in enumerate(batches, 1):
        real_a, real_b = (augment(real.to(device, non_blocking=True)) for real in (real_a, real_b))
        losses = cyclegan_step(nets, parts, real_a, real_b, args, autocast, d_augment)
        values = dict(zip(LOSSES, compute.mean_across_ranks(losses, ranks).tolist()))
        compute.check_finite(values, f"epoch {epoch}, step {steps}", args.checkpoint_dir / LATEST)
        sums += torch.tensor(list(values.values()))
        bar.set_postfix({name.removeprefix("loss_"): f"{value:.3f}" for name, value in values.items()})
        bar.update()
        if bar.n == TIMED_STEPS and ranks.is_main:
            note = slow_run_note(bar.format_dict["elapsed"] / bar.n, bar.total, device)
            if note:
                tqdm.write(note)
    return {"epoch": epoch, **dict(zip(LOSSES, (sums / max(steps, 1)).tolist())),
            "lr": parts["optimizer_g"].param_groups[0]["lr"], "seconds": time.perf_counter() - start}


def train(args: argparse.Namespace) -> int:
    """The training run described in the module docstring; see main() for the return codes."""
    # settings: the device, the run's place, and with --resume every setting the run was started with
    checkpoint_path = args.checkpoint_dir / LATEST
    ranks, device = compute.setup_distributed(compute.pick_device(args.device))
    requested, args.bf16 = args.bf16, compute.use_bf16(args.bf16, device)
    note = compute.bf16_note(requested, args.bf16, device)
    if note and ranks.is_main:
        print(note)
    deadline = compute.Deadline(args.max_minutes)
    compute.keep_freed_memory()
    old_run = check_new_run(checkpoint_path, args.samples_dir, args.resume, args.overwrite)
    state = resume(args, checkpoint_path, device, SESSION_OPTIONS, "cyclegan") if args.resume else None

    # data
    folder_a, folder_b, val, rep = load_data(args, state)
    compute.seed_everything(args.seed)
    config = ModelConfig.from_dict(state["model"]) if state is not None else \
        new_model_config(args, rep, reference_level([folder_a, folder_b]))
    dataset = (RandomWindows if config.random_windows else UnpairedChunks)(folder_a, folder_b, args.seed)
    loader = DataLoader(dataset, args.batch_size, sampler=compute.data_sampler(dataset, ranks), shuffle=False,
                        num_workers=compute.loader_workers(args.workers, device), drop_last=True,
                        pin_memory=device.type == "cuda")
    check_batch_size(args.batch_size, len(loader.sampler))
    steps = len(loader) if args.steps_per_epoch <= 0 else min(len(loader), args.steps_per_epoch)

    # models, optimisers, schedules, image pools
    parts = build_cyclegan(config, args, device)
    start_epoch, history = restore_run(parts, state, args.epochs) if state is not None else (1, [])
    if start_epoch > args.epochs:
        print(f"{checkpoint_path} has finished all {args.epochs} epochs; pass --epochs N to train further")
        return 0
    if ranks.is_main:
        prepare_outputs(args, parts, rep, old_run)
    if state is not None:
        print(f"resuming {checkpoint_path} at epoch {start_epoch} of {args.epochs}")
    names = ("generator_ab", "generator_ba", "discriminator_a", "discriminator_b")
    nets = dict(zip(names, compute.training_forms([parts[name] for name in names], device, ranks,
                                                  args.channels_last, args.compile)))
    count = config.n_blocks
    blocks = f" with {count} block{'s' * (count != 1)}" if config.generator == "resnet" else ""
    processes = f" x {ranks.world_size} processes" if ranks.world_size > 1 else ""
    print(f"{len(folder_a)} pop and {len(folder_b)} jazz chunks {tuple(folder_a.shape)}, {steps} steps per epoch, "
          f"{config.generator} generators of width {config.width}{blocks}, on {device}{processes}, "
          f"{'bf16 autocast' if args.bf16 else 'float32'}")
    transfer_log = transfer_rate_log(args, folder_a, folder_b, val, rep) if args.eval_every > 0 else None

    # the loop: an epoch of steps, then (rank 0) the checkpoint, its export, a sample and the logs
    last_epoch = args.epochs if args.stop_after <= 0 else min(args.epochs, start_epoch + args.stop_after - 1)
    # a resumed run's bar starts where the run stands, so its count and ETA are the run's, not the sitting's
    bar = tqdm(total=last_epoch * steps, initial=(start_epoch - 1) * steps, unit="step", disable=not ranks.is_main)
    for epoch in range(start_epoch, last_epoch + 1):
        dataset.set_epoch(epoch)
        history.append(train_epoch(epoch, nets, parts, itertools.islice(loader, steps), args, device, ranks, bar,
                                   real_augment(config, rep), discriminator_augment(config, rep)))
        parts["scheduler_g"].step()
        parts["scheduler_d"].step()
        if ranks.is_main:  # rank 0 alone writes checkpoints, samples and logs
            saved = training_state("cyclegan", epoch, rep, config.to_dict(), history, args, parts)
            ours = state is not None or epoch > start_epoch  # a new run's first save replaces no other run's
            save_checkpoint(checkpoint_path, saved, replace=ours)
            save_checkpoint(args.checkpoint_dir / GENERATORS_FILE, export_generators(saved), replace=ours)
            converter = at_reference_level(parts["generator_ab"], config.reference_level_db if config.level_match
                                           else None, rep)  # the samples sound as convert.py will
            write_epoch_outputs(converter, val, rep, args, epoch, history, transfer_log)
        # every rank stops after the same epoch: the first epoch after which any rank's budget is spent
        out_of_time = compute.mean_across_ranks(torch.tensor([float(deadline.passed)], device=device), ranks)
        if out_of_time.item() > 0 and epoch < last_epoch:
            tqdm.write(f"--max-minutes {args.max_minutes:g} passed after epoch {epoch}; carry on with --resume")
            break
    bar.close()
    print(f"done: {checkpoint_path}; samples and losses in {args.samples_dir}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
