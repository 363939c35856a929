"""Train the pop <-> jazz CycleGAN (Zhu et al. 2017, arXiv 1703.10593) on chunks from audio_preprocessing.py.

    uv run train.py                                       # paper-size model, for a GPU
    uv run train.py --width 16 --n-blocks 3 --epochs 10 --steps-per-epoch 50  # a CPU-sized demo
    uv run train.py --resume                              # carry on from checkpoints/latest.pt

The recipe is the paper's (section 4, appendix 7): LSGAN losses, lambda_cycle = 10, identity loss weighted
lambda_identity * lambda_cycle = 5, an image pool of 50 fakes per discriminator, Adam (lr 2e-4, betas 0.5/0.999),
constant learning rate for the first half of the epochs and a linear decay to zero over the second, batch size 1.
CUDA with bf16 autocast when there is a GPU, otherwise the CPU; several GPUs (or CPU processes) with
`torchrun --nproc_per_node=N train.py` (speed.py). After every epoch: checkpoints/latest.pt
(written atomically), samples/epoch_NNN.wav (a held-out pop song turned into jazz) with epoch_NNN.png (its
spectrogram before and after), and samples/losses.csv / losses.png.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
import sys
import time
import warnings
from pathlib import Path

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402
from tqdm import tqdm  # noqa: E402

import speed  # noqa: E402
from convert import pick_device  # noqa: E402
from model_cyclegan import (GENERATORS, ImagePool, PatchDiscriminator, build_generator,  # noqa: E402
                            init_weights, load_checkpoint, save_checkpoint)
from spectrogram import AudioError, Representation  # noqa: E402
from style_metrics import TransferRateLog  # noqa: E402
from train_outputs import LOSSES, write_loss_log, write_sample  # noqa: E402



class DataError(ValueError):
    """A dataset folder or chunk that cannot be trained on; the message names it and says what to run."""


class ChunkFolder:
    """The .npy chunks of one folder made by audio_preprocessing.py, memory-mapped: item i -> [n_bins, frames].

    Raises DataError naming the folder when it or its representation.json is missing or it holds no chunk, or
    naming the file when a chunk is unreadable, has the wrong shape or (when read) a non-finite value.
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise DataError(f"{self.folder} does not exist: run `uv run audio_preprocessing.py` first "
                            f"(or pass --data)")
        try:
            self.representation = Representation.load_json(self.folder / "representation.json")
        except (FileNotFoundError, ValueError) as error:
            raise DataError(str(error)) from error
        self.songs = [Path(song) for song in json.loads((self.folder / "representation.json").read_text())["songs"]]
        self.files = sorted(self.folder.glob("*.npy"))
        if not self.files:
            raise DataError(f"{self.folder} holds no .npy chunks: run `uv run audio_preprocessing.py`")
        self.shape = (self.representation.n_bins, self.representation.chunk_frames)
        for path in self.files:  # headers only: a wrong or unreadable chunk fails here, not hours into training
            self._open(path)

    def _open(self, path: Path) -> np.ndarray:
        try:
            chunk = np.load(path, mmap_mode="r")
        except (ValueError, OSError) as error:
            raise DataError(f"{path}: not a readable .npy chunk ({error}); run audio_preprocessing.py again")
        if chunk.shape != self.shape:
            raise DataError(f"{path}: shape {chunk.shape}, expected {self.shape}; run audio_preprocessing.py again")
        return chunk

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> np.ndarray:
        path = self.files[index]
        chunk = np.asarray(self._open(path), dtype=np.float32)
        if not np.isfinite(chunk).all() or np.abs(chunk).max() > 1.0:
            raise DataError(f"{path}: holds NaN, inf or values outside [-1, 1]; run audio_preprocessing.py again")
        return chunk


class UnpairedChunks(Dataset):
    """Pairs (pop chunk i, a jazz chunk drawn by a seeded per-epoch permutation): ([1, H, W], [1, H, W]).

    One epoch visits every chunk of the larger domain once.
    """

    def __init__(self, folder_a: ChunkFolder, folder_b: ChunkFolder, seed: int):
        self.a, self.b, self.seed = folder_a, folder_b, seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        generator = torch.Generator().manual_seed(self.seed * 100003 + epoch)
        self.order_a = torch.randperm(len(self.a), generator=generator).tolist()
        self.order_b = torch.randperm(len(self.b), generator=generator).tolist()

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def __getitem__(self, index: int):
        chunk_a = self.a[self.order_a[index % len(self.a)]]
        chunk_b = self.b[self.order_b[index % len(self.b)]]
        return torch.from_numpy(chunk_a)[None], torch.from_numpy(chunk_b)[None]


class LinearDecay:
    """Learning-rate factor: 1 for the first `constant` epochs, then linearly down towards 0 over `decay` epochs.

    Zhu et al. 2017 section 4 (100 + 100 epochs); the form of the reference implementation's 'linear' policy.
    """

    def __init__(self, constant: int, decay: int):
        self.constant, self.decay = constant, decay

    def __call__(self, epoch: int) -> float:
        return 1.0 - max(0, epoch + 1 - self.constant) / float(self.decay + 1)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--data", type=Path, default=Path("data"), help="folder with pop_train/, jazz_train/, pop_val/ "
        "(default: data)")
    add("--checkpoint-dir", type=Path, default=Path("checkpoints"), help="default: checkpoints")
    add("--samples-dir", type=Path, default=Path("samples"), help="default: samples")
    add("--epochs", type=int, default=None, help="half at constant lr, half decaying to 0 (default: 200; with "
        "--resume, the saved number unless given)")
    add("--batch-size", type=int, default=1, help="default: 1, as in the paper")
    add("--generator", choices=GENERATORS, default="resnet", help="both generators: resnet (Zhu et al. 2017) or "
        "unet (the pix2pix U-Net, Isola et al. 2017, depth from the chunk size; ignores --n-blocks); saved in the "
        "checkpoint for convert.py (default: resnet)")
    add("--width", type=int, default=64, help="generator width, 64 in the paper (default: 64)")
    add("--n-blocks", type=int, default=9, help="generator residual blocks, 9 in the paper (default: 9)")
    add("--disc-width", type=int, default=None, help="discriminator width (default: same as --width)")
    add("--steps-per-epoch", type=int, default=0, help="cap on steps per epoch; 0 = every chunk (default: 0)")
    add("--lr", type=float, default=2e-4, help="Adam learning rate (default: 2e-4)")
    add("--lambda-cycle", type=float, default=10.0, help="weight of the L1 cycle loss (default: 10)")
    add("--lambda-identity", type=float, default=0.5, help="identity loss weight as a fraction of "
        "lambda_cycle (default: 0.5)")
    add("--pool-size", type=int, default=50, help="image_pool size per discriminator (default: 50)")
    add("--griffin-lim-iters", type=int, default=32, help="for the sample WAVs (default: 32)")
    add("--seed", type=int, default=0, help="default: 0")
    speed.add_arguments(add)  # --workers, --compile, --channels-last
    add("--device", default="auto", help="auto (CUDA when available), cpu or cuda (default: auto)")
    add("--stop-after", type=int, default=0, help="stop after this many epochs in this run, to split a long "
        "run into sessions; carry on with --resume (default: 0 = run to --epochs)")
    add("--eval-every", type=int, default=0, help="every N epochs, log the style transfer rate of the pop_val "
        "chunks (evaluate.py's genre classifier, no Griffin-Lim) to <samples-dir>/transfer_rate.csv; 0 = never "
        "(default: 0)")
    add("--resume", action="store_true", help="continue from <checkpoint-dir>/latest.pt with its saved settings "
        "(--epochs may extend the run)")
    args = parser.parse_args(argv)
    args.epochs_given = args.epochs is not None
    args.epochs = args.epochs if args.epochs_given else 200
    args.disc_width = args.disc_width or args.width
    return args


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict:
    return {"python": random.getstate(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"].cpu())
    if torch.cuda.is_available() and state["cuda"]:
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: 0 when training finished, 1 on a user error, 2 on a non-finite loss."""
    try:
        return train(parse_args(argv))
    except DataError as error:
        print(f"\nerror: {error}", file=sys.stderr)
        return 1


def train(args: argparse.Namespace) -> int:
    """The training run described in the module docstring; see main() for the return codes."""
    checkpoint_path = args.checkpoint_dir / "latest.pt"
    device = pick_device(args.device)
    ranks, device = speed.setup_distributed(device)
    speed.keep_freed_memory()
    state = None
    if args.resume:
        try:
            state = load_checkpoint(checkpoint_path, device)
        except FileNotFoundError:
            print(f"error: --resume: no checkpoint in {args.checkpoint_dir}/ (expected latest.pt); "
                  f"train without --resume first, or pass --checkpoint-dir", file=sys.stderr)
            return 1
        except ValueError as error:
            print(f"error: --resume: {error}", file=sys.stderr)
            return 1
        saved = state["args"]
        kept = ("batch_size", "width", "n_blocks", "disc_width", "steps_per_epoch", "lr", "lambda_cycle",
                "lambda_identity", "pool_size", "griffin_lim_iters", "seed")
        kept += () if args.epochs_given else ("epochs",)
        for name in kept:
            setattr(args, name, saved[name])
        args.generator = saved.get("generator", "resnet")  # checkpoints from before --generator hold ResNets

    # data
    folder_a, folder_b = ChunkFolder(args.data / "pop_train"), ChunkFolder(args.data / "jazz_train")
    val = ChunkFolder(args.data / "pop_val") if any((args.data / "pop_val").glob("*.npy")) else None
    rep = folder_a.representation
    if folder_b.representation != rep:
        print(f"error: {folder_a.folder} and {folder_b.folder} were made with different settings; run "
              f"audio_preprocessing.py again", file=sys.stderr)
        return 1
    if state is not None and Representation.from_dict(state["representation"]) != rep:
        print(f"error: {checkpoint_path} was trained on another representation than {args.data}", file=sys.stderr)
        return 1
    seed_everything(args.seed)
    dataset = UnpairedChunks(folder_a, folder_b, args.seed)
    loader = DataLoader(dataset, args.batch_size, sampler=speed.data_sampler(dataset, ranks), shuffle=False,
                        num_workers=speed.loader_workers(args.workers, device), drop_last=True,
                        pin_memory=device.type == "cuda")

    # models, optimisers, schedules
    model_config = {"generator": args.generator, "width": args.width, "n_blocks": args.n_blocks,
                    "disc_width": args.disc_width, "image_size": [rep.n_bins, rep.chunk_frames]}
    generator_ab, generator_ba = (init_weights(build_generator(model_config)).to(device) for _ in range(2))
    discriminator_a, discriminator_b = (init_weights(PatchDiscriminator(1, args.disc_width)).to(device)
                                        for _ in range(2))
    optimizer_g = torch.optim.Adam(itertools.chain(generator_ab.parameters(), generator_ba.parameters()),
                                   args.lr, betas=(0.5, 0.999))
    optimizer_d = torch.optim.Adam(itertools.chain(discriminator_a.parameters(), discriminator_b.parameters()),
                                   args.lr, betas=(0.5, 0.999))
    decay = LinearDecay(args.epochs // 2, args.epochs - args.epochs // 2)
    scheduler_g = torch.optim.lr_scheduler.LambdaLR(optimizer_g, decay)
    scheduler_d = torch.optim.lr_scheduler.LambdaLR(optimizer_d, decay)
    image_pool_a, image_pool_b = ImagePool(args.pool_size), ImagePool(args.pool_size)
    modules = {"generator_ab": generator_ab, "generator_ba": generator_ba, "discriminator_a": discriminator_a,
               "discriminator_b": discriminator_b, "optimizer_g": optimizer_g, "optimizer_d": optimizer_d,
               "scheduler_g": scheduler_g, "scheduler_d": scheduler_d, "image_pool_a": image_pool_a,
               "image_pool_b": image_pool_b}
    start_epoch, history = 1, []
    if state is not None:
        for name, module in modules.items():
            module.load_state_dict(state[name])
        decay.__init__(args.epochs // 2, args.epochs - args.epochs // 2)  # --epochs may have been extended
        for scheduler in (scheduler_g, scheduler_d):  # LambdaLR applies a changed schedule only at its next step
            for group, base_lr in zip(scheduler.optimizer.param_groups, scheduler.base_lrs):
                group["lr"] = base_lr * decay(scheduler.last_epoch)
        set_rng_state(state["rng"])
        start_epoch, history = state["epoch"] + 1, state["history"]
        if start_epoch > args.epochs:
            print(f"{checkpoint_path} has finished all {args.epochs} epochs; pass --epochs N to train further")
            return 0
        print(f"resuming {checkpoint_path} at epoch {start_epoch} of {args.epochs}")
    generator_ab, generator_ba, discriminator_a, discriminator_b = speed.training_forms(
        [generator_ab, generator_ba, discriminator_a, discriminator_b], device, ranks, args.channels_last,
        args.compile)
    mse, l1 = nn.MSELoss(), nn.L1Loss()
    weight_identity = args.lambda_identity * args.lambda_cycle
    autocast = torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda")
    steps = len(loader) if args.steps_per_epoch <= 0 else min(len(loader), args.steps_per_epoch)
    print(f"{len(folder_a)} pop and {len(folder_b)} jazz chunks {tuple(folder_a.shape)}, {steps} steps per epoch, "
          f"{args.generator} generators of width {args.width}"
          f"{f' with {args.n_blocks} blocks' if args.generator == 'resnet' else ''}, on {device}"
          f"{f' x {ranks.world_size} processes' if ranks.world_size > 1 else ''}")

    transfer_log = None
    if args.eval_every > 0:
        try:
            if val is None:
                raise FileNotFoundError(f"--eval-every needs held-out pop songs: {args.data / 'pop_val'} is missing")
            transfer_log = TransferRateLog(folder_a, folder_b, val, args.samples_dir / "transfer_rate.csv", rep)
        except (FileNotFoundError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1

    last_epoch = args.epochs if args.stop_after <= 0 else min(args.epochs, start_epoch + args.stop_after - 1)
    for epoch in range(start_epoch, last_epoch + 1):
        dataset.set_epoch(epoch)
        sums = dict.fromkeys(LOSSES, 0.0)
        start = time.perf_counter()
        bar = tqdm(itertools.islice(loader, steps), total=steps, desc=f"epoch {epoch}/{args.epochs}", unit="step",
                   disable=not ranks.is_main)
        for step, (real_a, real_b) in enumerate(bar, 1):
            real_a, real_b = real_a.to(device, non_blocking=True), real_b.to(device, non_blocking=True)
            # generators: fool both discriminators, close both cycles, leave in-domain input alone
            discriminator_a.requires_grad_(False)
            discriminator_b.requires_grad_(False)
            with autocast:
                fake_b, fake_a = generator_ab(real_a), generator_ba(real_b)
                pred_b, pred_a = discriminator_b(fake_b), discriminator_a(fake_a)
                loss_g_gan = mse(pred_b, torch.ones_like(pred_b)) + mse(pred_a, torch.ones_like(pred_a))
                loss_cycle = l1(generator_ba(fake_b), real_a) + l1(generator_ab(fake_a), real_b)
                loss_identity = l1(generator_ab(real_b), real_b) + l1(generator_ba(real_a), real_a)
                loss_g = loss_g_gan + args.lambda_cycle * loss_cycle + weight_identity * loss_identity
            optimizer_g.zero_grad(set_to_none=True)
            loss_g.backward()
            optimizer_g.step()
            # discriminators: real -> 1, a fake from the history pool -> 0
            discriminator_a.requires_grad_(True)
            discriminator_b.requires_grad_(True)
            with autocast:
                losses_d = []
                for discriminator, real, pool, fake in ((discriminator_a, real_a, image_pool_a, fake_a),
                                                        (discriminator_b, real_b, image_pool_b, fake_b)):
                    pred_real, pred_fake = discriminator(real), discriminator(pool.query(fake.detach()))
                    losses_d.append(0.5 * (mse(pred_real, torch.ones_like(pred_real))
                                           + mse(pred_fake, torch.zeros_like(pred_fake))))
            optimizer_d.zero_grad(set_to_none=True)
            (losses_d[0] + losses_d[1]).backward()
            optimizer_d.step()

            values = torch.stack([loss_g_gan, loss_cycle, loss_identity, *losses_d]).detach()
            values = dict(zip(LOSSES, speed.mean_across_ranks(values, ranks).tolist()))
            if not all(math.isfinite(v) for v in values.values()):
                print(f"\nerror: non-finite loss at epoch {epoch}, step {step}: {values}. Stopped; "
                      f"{checkpoint_path} still holds the last good epoch. Try a lower --lr.", file=sys.stderr)
                return 2
            for name, value in values.items():
                sums[name] += value
            bar.set_postfix({name.removeprefix("loss_"): f"{value:.3f}" for name, value in values.items()})
        history.append({"epoch": epoch, **{name: total / steps for name, total in sums.items()},
                        "lr": optimizer_g.param_groups[0]["lr"], "seconds": time.perf_counter() - start})
        scheduler_g.step()
        scheduler_d.step()
        if not ranks.is_main:  # rank 0 alone writes checkpoints, samples and logs
            continue
        save_checkpoint(checkpoint_path, {
            "epoch": epoch, "representation": rep.to_dict(), "model": model_config, "history": history,
            "args": {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()},
            "rng": rng_state(), **{name: module.state_dict() for name, module in modules.items()}})
        try:
            write_sample(modules["generator_ab"], args, rep, epoch, val)
        except AudioError as error:
            warnings.warn(f"no sample this epoch: {error}")
        if transfer_log is not None and epoch % args.eval_every == 0:
            transfer_log(modules["generator_ab"], epoch)
        write_loss_log(history, args.samples_dir)
    print(f"done: {checkpoint_path}; samples and losses in {args.samples_dir}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
