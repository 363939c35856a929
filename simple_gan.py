"""A fully-connected GAN that dreams up small spectrograms of one domain (Goodfellow et al. 2014, arXiv 1406.2661).

    uv run simple_gan.py                                  # data/jazz_train -> samples/simple_gan/, a minute on CPU
    uv run simple_gan.py --data data/pop_train --epochs 300 --name pop_gan
    uv run simple_gan.py --resume                         # carry on from checkpoints/simple_gan/latest.pt

The first step of the learning path simple GAN -> pix2pix (model_pix2pix.py) -> CycleGAN (train.py): no
convolutions, no conditioning, just noise in and an image out. Every chunk from audio_preprocessing.py is shrunk
to image_size x image_size by averaging blocks of bins and frames (64x64 from 512x512: 8x8 blocks); an MLP
generator maps a latent noise vector to such an image and an MLP discriminator tells them from real ones, trained
with binary cross-entropy (the non-saturating generator loss of the paper's section 3). The stabilisers that make
it learn from a few dozen chunks in a minute: Adam with lr 2e-4 and beta1 0.5 (Radford et al. 2016 section 4)
instead of the paper's SGD, BatchNorm in the generator (Radford et al. section 3), LeakyReLU and dropout in the
discriminator, one-sided label smoothing (real images labelled 0.9, Salimans et al. 2016 section 3.4) and small
batches (8), so that an epoch of the usual 23 chunks is 3 steps. The default run (600 steps, under a minute on one
CPU core) draws varied images with the domain's bass-heavy slope and band limits; their fine texture stays noise,
since an MLP has no notion of neighbouring pixels: what the convolutions of pix2pix and CycleGAN add.
Every --sample-every epochs and after the last: the checkpoint checkpoints/NAME/latest.pt (written atomically),
samples/NAME/epoch_NNN.png (a grid of images from a fixed batch of latent vectors, so epochs compare),
epoch_NNN_K.wav (the first of them upsampled back to the representation's image size and inverted as convert.py
does, by Griffin-Lim, here from zero phase) and losses.csv / losses.png. Like train.py, it never starts over a
run that is there: --resume, another --name or --overwrite.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from model_cyclegan import init_weights
from pop2jazz import commands, compute
from pop2jazz.commands import float_range, int_range, non_negative_int, positive_float, positive_int
from pop2jazz.checkpoint import save_checkpoint
from pop2jazz.dataset import ChunkFolder, DataError
from pop2jazz.output_files import audio_bytes, check_writable, write_audio
from pop2jazz.plots import plt, save_figure, write_loss_log
from pop2jazz.runs import (
    CHECKPOINTS,
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
from pop2jazz.spectrogram import Representation, chunk_to_audio

LOSSES = ("loss_d", "loss_g", "d_real", "d_fake")
# options a resumed run takes from this invocation; every other setting comes back from the checkpoint
SESSION_OPTIONS = {"data", "name", "checkpoint", "samples_dir", "device", "resume", "overwrite"}
GRID = 4  # the PNG shows GRID x GRID generated images


class MlpGenerator(nn.Module):
    """G(z): latent [B, latent_dim] -> spectrogram images [B, 1, image_size, image_size] in [-1, 1].

    Linear layers latent_dim -> hidden -> 2 * hidden -> image_size ** 2 with ReLU between them, tanh out
    (Goodfellow et al. 2014 section 5 used ReLU and a sigmoid out; tanh matches our [-1, 1] images).
    norm "batch" puts BatchNorm1d before each hidden ReLU, as DCGAN does in its generator (Radford et al. 2016
    section 3): it keeps every unit's activations spread over the batch, the main cure for a generator that
    draws the same blur for every z. None (checkpoints from before it) leaves it out.
    """

    def __init__(self, image_size: int = 64, latent_dim: int = 100, hidden: int = 256, norm: str | None = None):
        super().__init__()
        self.image_size, self.latent_dim = image_size, latent_dim
        normed = (lambda units: [nn.BatchNorm1d(units)]) if norm == "batch" else (lambda units: [])
        self.model = nn.Sequential(
            nn.Linear(latent_dim, hidden), *normed(hidden), nn.ReLU(True),
            nn.Linear(hidden, 2 * hidden), *normed(2 * hidden), nn.ReLU(True),
            nn.Linear(2 * hidden, image_size ** 2), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model(z).view(-1, 1, self.image_size, self.image_size)


class MlpDiscriminator(nn.Module):
    """D(x): images [B, 1, image_size, image_size] -> realness logits [B] (sigmoid gives P(real)).

    Linear layers image_size ** 2 -> 2 * hidden -> hidden -> 1 with LeakyReLU(0.2) and dropout 0.3 between them.
    Goodfellow et al. 2014 section 5 used maxout units and trained the discriminator with dropout; LeakyReLU is
    the usual simpler stand-in for maxout.
    """

    def __init__(self, image_size: int = 64, hidden: int = 256):
        super().__init__()
        self.model = nn.Sequential(
            nn.Flatten(),
            nn.Linear(image_size ** 2, 2 * hidden), nn.LeakyReLU(0.2, True), nn.Dropout(0.3),
            nn.Linear(2 * hidden, hidden), nn.LeakyReLU(0.2, True), nn.Dropout(0.3),
            nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).squeeze(1)


def shrink_chunks(folder: ChunkFolder, image_size: int) -> torch.Tensor:
    """Every chunk of `folder` [n_bins, chunk_frames] -> [N, 1, image_size, image_size] in [-1, 1].

    Area interpolation: each output pixel is the mean (in the dB-scaled image) of a block of bins x frames.
    """
    return torch.cat([F.interpolate(torch.from_numpy(folder[index])[None, None], (image_size, image_size),
                                    mode="area") for index in range(len(folder))])


def grow_image(image: torch.Tensor, rep: Representation) -> torch.Tensor:
    """A generated image [image_size, image_size] -> [n_bins, chunk_frames] in [-1, 1], bilinear upsampling."""
    grown = F.interpolate(image[None, None], (rep.n_bins, rep.chunk_frames), mode="bilinear", align_corners=False)
    return grown[0, 0].clamp(-1.0, 1.0)


def write_samples(generator: MlpGenerator, fixed_noise: torch.Tensor, rep: Representation,
                  args: argparse.Namespace, epoch: int) -> None:
    """<samples-dir>/epoch_NNN.png (a GRID x GRID grid of G(fixed_noise)) and epoch_NNN_K.wav for K < n_wavs."""
    generator.eval()
    with torch.no_grad():
        images = generator(fixed_noise).cpu()[:, 0]
    generator.train()
    stem = args.samples_dir / f"epoch_{epoch:03d}"
    figure, axes = plt.subplots(GRID, GRID, figsize=(8, 8.4))
    for axis, image in zip(axes.flat, images):
        axis.imshow(image.numpy(), origin="lower", aspect="auto", cmap="magma", vmin=-1, vmax=1)
        axis.set_axis_off()
    figure.suptitle(f"simple GAN, epoch {epoch}: {images.shape[-1]}x{images.shape[-1]} spectrograms "
                    f"(frequency up, time right, {rep.chunk_seconds:.1f} s each)")
    figure.tight_layout()
    save_figure(figure, stem.with_suffix(".png"))
    for index, image in enumerate(images[: args.n_wavs]):
        audio = chunk_to_audio(grow_image(image, rep), args.griffin_lim_iters, rep)
        write_audio(stem.with_name(f"{stem.name}_{index}.wav"), audio, rep.sample_rate,
                    {"tool": "simple_gan.py", "checkpoint": str(args.checkpoint), "epoch": epoch, "image": index})


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--data", type=Path, default=Path("data/jazz_train"), help="one domain's chunk folder from "
        "audio_preprocessing.py (default: data/jazz_train)")
    add_run_options(parser, "simple_gan")  # --name, --resume, --overwrite
    add("--checkpoint", type=Path, default=None, help="checkpoint file written after every epoch and read by "
        "--resume, instead of checkpoints/NAME/latest.pt")
    add("--samples-dir", type=Path, default=None, help="PNG grids, WAVs and losses.csv, instead of samples/NAME")
    add("--epochs", type=positive_int, default=200,
        help="passes over the chunks (default: 200; with --resume, the saved "
        "number unless given)")
    add("--batch-size", type=int_range(2), default=8, help="chunks per step (default: 8)")
    add("--real-label", type=float_range(0.0, 1.0, low_open=True), default=0.9,
        help="the discriminator's target for real images: below 1 is "
        "one-sided label smoothing (Salimans et al. 2016 section 3.4), which keeps it from growing so sure that "
        "the generator's gradients vanish (default: 0.9)")
    add("--image-size", type=positive_int, default=64, help="side of the square images the GAN sees and makes, shrunk "
        "from the chunks (default: 64)")
    add("--latent-dim", type=positive_int, default=100, help="length of the generator's noise vector z (default: 100)")
    add("--hidden", type=positive_int, default=256, help="units of the narrower hidden layer; the wider has twice as "
        "many (default: 256)")
    add("--lr", type=positive_float, default=2e-4, help="Adam learning rate, both networks (default: 2e-4)")
    add("--sample-every", type=positive_int, default=10,
        help="save the checkpoint and write the PNG grid, WAVs and losses "
        "every N epochs, and after the last (default: 10)")
    add("--n-wavs", type=int_range(0, GRID ** 2), default=2,
        help="generated images written as WAV each epoch (default: 2)")
    add("--griffin-lim-iters", type=non_negative_int, default=32, help="for the WAVs (default: 32)")
    add("--seed", type=non_negative_int, default=0, help="seed of the weights, noise and batch order (default: 0)")
    add("--device", default="auto", help="auto (CUDA when available), cpu or cuda (default: auto)")
    args = parser.parse_args(argv)
    args.given = explicit_options(parser, argv)
    args.checkpoint = args.checkpoint or CHECKPOINTS / args.name / LATEST
    args.samples_dir = args.samples_dir or SAMPLES / args.name
    return args


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: 0 when training finished, 1 on a user error, 2 on a non-finite loss, 130 / 143
    when interrupted (Ctrl-C / SIGTERM)."""
    return commands.run_command(train, parse_args(argv),
                               interrupted="the checkpoint holds the last finished epoch; carry on with --resume")


def gan_step(generator: MlpGenerator, discriminator: MlpDiscriminator, optimizers: dict, real: torch.Tensor,
             real_label: float = 1.0) -> dict[str, float]:
    """One step of the discriminator (real -> 1, fake -> 0), then of the generator, which maximises log D(G(z))
    (Goodfellow et al. 2014 section 3: strong gradients early on). real: [B, 1, S, S]. Returns LOSSES' values."""
    fake = generator(torch.randn(len(real), generator.latent_dim, device=real.device))
    logits_real, logits_fake = discriminator(real), discriminator(fake.detach())
    loss_d = F.binary_cross_entropy_with_logits(logits_real, torch.full_like(logits_real, real_label)) + \
        F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake))
    optimizers["optimizer_d"].zero_grad(set_to_none=True)
    loss_d.backward()
    optimizers["optimizer_d"].step()
    logits = discriminator(fake)
    loss_g = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    optimizers["optimizer_g"].zero_grad(set_to_none=True)
    loss_g.backward()
    optimizers["optimizer_g"].step()
    return dict(zip(LOSSES, torch.stack([loss_d, loss_g, torch.sigmoid(logits_real).mean(),
                                         torch.sigmoid(logits_fake).mean()]).tolist()))


def prepare_outputs(args: argparse.Namespace, parts: dict, rep: Representation, old_run: list[Path]) -> None:
    """Before the first step: the run's folders must be writable with room for a checkpoint and a round of
    samples (raises output_files.OutputError saying which flag to change); then an --overwrite run's old files go."""
    check_writable(args.checkpoint.parent, estimate_checkpoint_bytes(parts), "pass --checkpoint with a writable "
                   "place (or another --name)")
    check_writable(args.samples_dir, args.n_wavs * audio_bytes(rep.chunk_samples) + (1 << 20),
                   "pass --samples-dir with a writable place")
    clear_run(old_run)


def shuffled_batches(count: int, batch_size: int, device: torch.device | str = "cpu") -> list[torch.Tensor]:
    """Indices 0 .. count - 1 in a random order, cut into batches of `batch_size`; a last batch of one joins the
    one before it, since BatchNorm cannot normalise a single image."""
    batches = list(torch.randperm(count, device=device).split(batch_size))
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches[-2:] = [torch.cat(batches[-2:])]
    return batches


def train_epoch(epoch: int, generator: MlpGenerator, discriminator: MlpDiscriminator, parts: dict,
                real_images: torch.Tensor, args: argparse.Namespace, bar: tqdm) -> dict:
    """One pass over real_images [N, 1, S, S] in shuffled batches of gan_step: its history row (LOSSES' means).
    Raises compute.NonFiniteLoss at the first NaN or infinite loss."""
    sums, steps = dict.fromkeys(LOSSES, 0.0), 0
    for steps, batch in enumerate(shuffled_batches(len(real_images), args.batch_size, real_images.device), 1):
        values = gan_step(generator, discriminator, parts, real_images[batch], args.real_label)
        compute.check_finite(values, f"epoch {epoch}", args.checkpoint)
        for name, value in values.items():
            sums[name] += value
        bar.set_postfix({name.removeprefix("loss_"): f"{value:.3f}" for name, value in values.items()})
        bar.update()
    return {"epoch": epoch, **{name: total / max(steps, 1) for name, total in sums.items()}}


def train(args: argparse.Namespace) -> int:
    """The training run described in the module docstring; see main() for the return codes."""
    # settings: the device, and with --resume every setting the run was started with
    device = compute.pick_device(args.device)
    old_run = check_new_run(args.checkpoint, args.samples_dir, args.resume, args.overwrite)
    state = resume(args, args.checkpoint, device, SESSION_OPTIONS, "simple_gan") if args.resume else None

    # data
    folder = ChunkFolder(args.data)
    rep = folder.representation
    check_batch_size(args.batch_size, len(folder))
    if state is not None and Representation.from_dict(state["representation"]) != rep:
        raise DataError(f"{args.checkpoint} was trained on another representation than {args.data}")
    real_images = shrink_chunks(folder, args.image_size).to(device)
    compute.seed_everything(args.seed)

    # models, optimisers
    config = state["model"] if state is not None else {"image_size": args.image_size, "latent_dim": args.latent_dim,
                                                       "hidden": args.hidden, "norm": "batch"}
    generator = init_weights(MlpGenerator(**config)).to(device)
    discriminator = init_weights(MlpDiscriminator(args.image_size, args.hidden)).to(device)
    parts = {"generator": generator, "discriminator": discriminator,
             "optimizer_g": torch.optim.Adam(generator.parameters(), args.lr, betas=(0.5, 0.999)),
             "optimizer_d": torch.optim.Adam(discriminator.parameters(), args.lr, betas=(0.5, 0.999))}
    fixed_noise = torch.randn(GRID ** 2, args.latent_dim, device=device)
    start_epoch, history = 1, []
    if state is not None:
        restore_parts(parts, state)
        compute.set_rng_state(state["rng"])
        fixed_noise, start_epoch, history = state["fixed_noise"].to(device), state["epoch"] + 1, state["history"]
    if start_epoch > args.epochs:
        print(f"{args.checkpoint} has finished all {args.epochs} epochs; pass --epochs N to train further")
        return 0
    prepare_outputs(args, parts, rep, old_run)
    if state is not None:
        print(f"resuming {args.checkpoint} at epoch {start_epoch} of {args.epochs}")
    steps = math.ceil(len(real_images) / args.batch_size) - (len(real_images) % args.batch_size == 1
                                                              and len(real_images) > args.batch_size)
    print(f"{len(real_images)} chunks of {args.data} as {args.image_size}x{args.image_size} images, {steps} steps "
          f"per epoch, on {device}")

    # the loop: an epoch of steps, then the checkpoint, samples and the loss log
    bar = tqdm(total=(args.epochs - start_epoch + 1) * steps, unit="step")
    saved = state is not None  # a new run's first save replaces no other run's checkpoint
    for epoch in range(start_epoch, args.epochs + 1):
        bar.set_description(f"epoch {epoch}/{args.epochs}")
        history.append(train_epoch(epoch, generator, discriminator, parts, real_images, args, bar))
        if epoch % args.sample_every == 0 or epoch == args.epochs:  # an epoch is a few steps: save now and then
            save_checkpoint(args.checkpoint, training_state("simple_gan", epoch, rep, config, history, args, parts,
                                                            fixed_noise=fixed_noise.cpu()), replace=saved)
            saved = True
            write_samples(generator, fixed_noise, rep, args, epoch)
            write_loss_log(history, args.samples_dir, LOSSES, "simple GAN losses")
    bar.close()
    print(f"done: {args.checkpoint}; samples and losses in {args.samples_dir}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
