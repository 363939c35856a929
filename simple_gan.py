"""A fully-connected GAN that dreams up small spectrograms of one domain (Goodfellow et al. 2014, arXiv 1406.2661).

    uv run simple_gan.py                                  # data/jazz_train -> samples/simple_gan/, a few minutes on CPU
    uv run simple_gan.py --data data/pop_train --epochs 300
    uv run simple_gan.py --resume                         # carry on from checkpoints/simple_gan.pt

The first step of the learning path simple GAN -> pix2pix (model_pix2pix.py) -> CycleGAN (train.py): no
convolutions, no conditioning, just noise in and an image out. Every chunk from audio_preprocessing.py is shrunk
to image_size x image_size by averaging blocks of bins and frames (64x64 from 512x512: 8x8 blocks); an MLP
generator maps a latent noise vector to such an image and an MLP discriminator tells them from real ones, trained
with binary cross-entropy (the non-saturating generator loss of the paper's section 3). Adam with lr 2e-4 and
beta1 0.5 (Radford et al. 2015 section 4) instead of the paper's SGD with momentum, to converge in minutes.
After every epoch: the checkpoint (written atomically), samples/simple_gan/epoch_NNN.png (a grid of images from a
fixed batch of latent vectors, so epochs compare), epoch_NNN_K.wav (the first of them upsampled back to the
representation's image size and inverted as convert.py does, by Griffin-Lim, here from zero phase) and losses.csv.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from tqdm import tqdm  # noqa: E402

from convert import pick_device  # noqa: E402
from model_cyclegan import init_weights, load_checkpoint, save_checkpoint  # noqa: E402
from spectrogram import Representation, griffin_lim, image_to_magnitude, write_wav  # noqa: E402
from train import ChunkFolder, rng_state, seed_everything, set_rng_state  # noqa: E402

LOSSES = ("loss_d", "loss_g", "d_real", "d_fake")
GRID = 4  # the PNG shows GRID x GRID generated images


class MlpGenerator(nn.Module):
    """G(z): latent [B, latent_dim] -> spectrogram images [B, 1, image_size, image_size] in [-1, 1].

    Linear layers latent_dim -> hidden -> 2 * hidden -> image_size ** 2 with ReLU between them, tanh out
    (Goodfellow et al. 2014 section 5 used ReLU and a sigmoid out; tanh matches our [-1, 1] images).
    """

    def __init__(self, image_size: int = 64, latent_dim: int = 100, hidden: int = 256):
        super().__init__()
        self.image_size, self.latent_dim = image_size, latent_dim
        self.model = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.ReLU(True),
            nn.Linear(hidden, 2 * hidden), nn.ReLU(True),
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
    stem.parent.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(GRID, GRID, figsize=(8, 8.4))
    for axis, image in zip(axes.flat, images):
        axis.imshow(image.numpy(), origin="lower", aspect="auto", cmap="magma", vmin=-1, vmax=1)
        axis.set_axis_off()
    figure.suptitle(f"simple GAN, epoch {epoch}: {images.shape[-1]}x{images.shape[-1]} spectrograms "
                    f"(frequency up, time right, {rep.chunk_seconds:.1f} s each)")
    figure.tight_layout()
    figure.savefig(stem.with_suffix(".png"), dpi=80)
    plt.close(figure)
    for index, image in enumerate(images[: args.n_wavs]):
        magnitude = image_to_magnitude(grow_image(image, rep), rep)
        # centred STFT frames: (chunk_frames - 1) hops of audio give back exactly chunk_frames frames
        audio = griffin_lim(magnitude, None, args.griffin_lim_iters, (rep.chunk_frames - 1) * rep.hop_length, rep)
        write_wav(stem.with_name(f"{stem.name}_{index}.wav"), audio, rep.sample_rate)


def write_loss_log(history: list[dict], samples_dir: Path) -> None:
    """<samples-dir>/losses.csv, one row per epoch: the mean losses and mean D(x), D(G(z))."""
    samples_dir.mkdir(parents=True, exist_ok=True)
    with open(samples_dir / "losses.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=["epoch", *LOSSES])
        writer.writeheader()
        writer.writerows(history)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--data", type=Path, default=Path("data/jazz_train"), help="one domain's chunk folder from "
        "audio_preprocessing.py (default: data/jazz_train)")
    add("--checkpoint", type=Path, default=Path("checkpoints/simple_gan.pt"), help="written after every epoch, "
        "read by --resume (default: checkpoints/simple_gan.pt)")
    add("--samples-dir", type=Path, default=Path("samples/simple_gan"), help="PNG grids, WAVs and losses.csv "
        "(default: samples/simple_gan)")
    add("--epochs", type=int, default=None, help="passes over the chunks (default: 200; with --resume, the saved "
        "number unless given)")
    add("--batch-size", type=int, default=32, help="chunks per step (default: 32)")
    add("--image-size", type=int, default=64, help="side of the square images the GAN sees and makes, shrunk "
        "from the chunks (default: 64)")
    add("--latent-dim", type=int, default=100, help="length of the generator's noise vector z (default: 100)")
    add("--hidden", type=int, default=256, help="units of the narrower hidden layer; the wider has twice as "
        "many (default: 256)")
    add("--lr", type=float, default=2e-4, help="Adam learning rate, both networks (default: 2e-4)")
    add("--n-wavs", type=int, default=2, help="generated images written as WAV each epoch (default: 2)")
    add("--griffin-lim-iters", type=int, default=32, help="for the WAVs (default: 32)")
    add("--seed", type=int, default=0, help="seed of the weights, noise and batch order (default: 0)")
    add("--device", default="auto", help="auto (CUDA when available), cpu or cuda (default: auto)")
    add("--resume", action="store_true", help="continue from --checkpoint with its saved settings (--epochs may "
        "extend the run)")
    args = parser.parse_args(argv)
    args.epochs_given = args.epochs is not None
    args.epochs = args.epochs if args.epochs_given else 200
    if min(args.batch_size, args.image_size, args.latent_dim, args.hidden) < 1 or args.n_wavs > GRID ** 2:
        parser.error(f"sizes must be positive and --n-wavs at most {GRID ** 2}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = pick_device(args.device)
    state = None
    if args.resume:
        try:
            state = load_checkpoint(args.checkpoint, device)
        except FileNotFoundError:
            print(f"error: --resume: no checkpoint at {args.checkpoint}; train without --resume first, or pass "
                  f"--checkpoint", file=sys.stderr)
            return 1
        kept = ("batch_size", "image_size", "latent_dim", "hidden", "lr", "n_wavs", "griffin_lim_iters", "seed",
                *(() if args.epochs_given else ("epochs",)))
        for name in kept:
            setattr(args, name, state["args"][name])

    # data
    try:
        folder = ChunkFolder(args.data)
        rep = folder.representation
        if state is not None and Representation.from_dict(state["representation"]) != rep:
            raise ValueError(f"{args.checkpoint} was trained on another representation than {args.data}")
        real_images = shrink_chunks(folder, args.image_size).to(device)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    seed_everything(args.seed)

    # models, optimisers
    generator = init_weights(MlpGenerator(args.image_size, args.latent_dim, args.hidden)).to(device)
    discriminator = init_weights(MlpDiscriminator(args.image_size, args.hidden)).to(device)
    optimizer_g = torch.optim.Adam(generator.parameters(), args.lr, betas=(0.5, 0.999))
    optimizer_d = torch.optim.Adam(discriminator.parameters(), args.lr, betas=(0.5, 0.999))
    fixed_noise = torch.randn(GRID ** 2, args.latent_dim, device=device)
    modules = {"generator": generator, "discriminator": discriminator, "optimizer_g": optimizer_g,
               "optimizer_d": optimizer_d}
    start_epoch, history = 1, []
    if state is not None:
        for name, module in modules.items():
            module.load_state_dict(state[name])
        fixed_noise = state["fixed_noise"].to(device)
        set_rng_state(state["rng"])
        start_epoch, history = state["epoch"] + 1, state["history"]
        if start_epoch > args.epochs:
            print(f"{args.checkpoint} has finished all {args.epochs} epochs; pass --epochs N to train further")
            return 0
        print(f"resuming {args.checkpoint} at epoch {start_epoch} of {args.epochs}")
    bce = nn.BCEWithLogitsLoss()
    steps = math.ceil(len(real_images) / args.batch_size)
    print(f"{len(real_images)} chunks of {args.data} as {args.image_size}x{args.image_size} images, {steps} steps "
          f"per epoch, on {device}")

    bar = tqdm(total=(args.epochs - start_epoch + 1) * steps, unit="step")
    for epoch in range(start_epoch, args.epochs + 1):
        bar.set_description(f"epoch {epoch}/{args.epochs}")
        sums = dict.fromkeys(LOSSES, 0.0)
        for batch in torch.randperm(len(real_images), device=device).split(args.batch_size):
            real = real_images[batch]
            fake = generator(torch.randn(len(real), args.latent_dim, device=device))
            # discriminator: real -> 1, fake -> 0
            logits_real, logits_fake = discriminator(real), discriminator(fake.detach())
            loss_d = bce(logits_real, torch.ones_like(logits_real)) + bce(logits_fake, torch.zeros_like(logits_fake))
            optimizer_d.zero_grad(set_to_none=True)
            loss_d.backward()
            optimizer_d.step()
            # generator: maximise log D(G(z)) (section 3), which has strong gradients early on
            logits = discriminator(fake)
            loss_g = bce(logits, torch.ones_like(logits))
            optimizer_g.zero_grad(set_to_none=True)
            loss_g.backward()
            optimizer_g.step()

            values = dict(zip(LOSSES, torch.stack([loss_d, loss_g, torch.sigmoid(logits_real).mean(),
                                                   torch.sigmoid(logits_fake).mean()]).tolist()))
            if not all(math.isfinite(value) for value in values.values()):
                print(f"\nerror: non-finite loss at epoch {epoch}: {values}. Stopped; {args.checkpoint} still "
                      f"holds the last good epoch. Try a lower --lr.", file=sys.stderr)
                return 2
            for name, value in values.items():
                sums[name] += value
            bar.set_postfix({name.removeprefix("loss_"): f"{value:.3f}" for name, value in values.items()})
            bar.update()
        history.append({"epoch": epoch, **{name: total / steps for name, total in sums.items()}})
        save_checkpoint(args.checkpoint, {
            "epoch": epoch, "representation": rep.to_dict(), "history": history, "fixed_noise": fixed_noise.cpu(),
            "model": {"image_size": args.image_size, "latent_dim": args.latent_dim, "hidden": args.hidden},
            "args": {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()},
            "rng": rng_state(), **{name: module.state_dict() for name, module in modules.items()}})
        write_samples(generator, fixed_noise, rep, args, epoch)
        write_loss_log(history, args.samples_dir)
    bar.close()
    print(f"done: {args.checkpoint}; samples and losses in {args.samples_dir}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
