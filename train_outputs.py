"""What train.py writes after each epoch for a person to look at and listen to: a converted held-out song with
its spectrogram picture, and the loss curves."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from convert import convert_audio, transform_image  # noqa: E402
from spectrogram import (Representation, audio_to_image, griffin_lim, image_to_magnitude, load_audio,  # noqa: E402
                         write_wav)

if TYPE_CHECKING:
    from train import ChunkFolder

LOSSES = ("loss_g_gan", "loss_cycle", "loss_identity", "loss_d_a", "loss_d_b")


def write_sample(generator: nn.Module, args: argparse.Namespace, rep: Representation, epoch: int,
                 val: ChunkFolder | None) -> None:
    """samples/epoch_NNN.wav and .png: a held-out pop song (its first 30 s) converted by `generator`."""
    if val is None:
        return
    songs = [song for song in val.songs if song.is_file()]
    generator.eval()
    try:  # back to training mode even when the song cannot be read
        if songs:
            audio = load_audio(songs[0], rep.sample_rate)[: 30 * rep.sample_rate]
            before = audio_to_image(audio, rep)
            converted = convert_audio(generator, audio, rep, args.griffin_lim_iters)
            after = audio_to_image(converted, rep)
        else:  # the song moved: use a chunk, with Griffin-Lim from zero phase
            before = torch.from_numpy(val[0])
            after = transform_image(generator, before, rep.chunk_frames)
            length = (rep.chunk_frames - 1) * rep.hop_length  # what 512 centred frames invert to
            converted = griffin_lim(image_to_magnitude(after, rep), None, args.griffin_lim_iters, length, rep)
    finally:
        generator.train()
    stem = args.samples_dir / f"epoch_{epoch:03d}"
    write_wav(stem.with_suffix(".wav"), converted, rep.sample_rate)
    figure, axes = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for axis, image, title in zip(axes, (before, after), ("held-out pop (input)", f"jazz, epoch {epoch}")):
        extent = (0, image.shape[-1] * rep.hop_length / rep.sample_rate, 0, rep.sample_rate / 2000)
        shown = axis.imshow((image.numpy() + 1) / 2 * (rep.db_max - rep.db_min) + rep.db_min, origin="lower",
                            aspect="auto", extent=extent, cmap="magma", vmin=rep.db_min, vmax=rep.db_max)
        axis.set(title=title, ylabel="frequency (kHz)")
        figure.colorbar(shown, ax=axis, label="dB")
    axes[-1].set_xlabel("time (s)")
    figure.tight_layout()
    figure.savefig(stem.with_suffix(".png"), dpi=80)
    plt.close(figure)


def write_loss_log(history: list[dict], samples_dir: Path) -> None:
    """samples/losses.csv (one row per epoch) and samples/losses.png."""
    samples_dir.mkdir(parents=True, exist_ok=True)
    with open(samples_dir / "losses.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=["epoch", *LOSSES, "lr", "seconds"])
        writer.writeheader()
        writer.writerows(history)
    figure, axis = plt.subplots(figsize=(8, 4.5))
    epochs = [row["epoch"] for row in history]
    for name in LOSSES:
        axis.plot(epochs, [row[name] for row in history], marker="o", label=name)
    axis.set(xlabel="epoch", ylabel="mean loss", yscale="log", title="CycleGAN losses")
    axis.legend()
    figure.tight_layout()
    figure.savefig(samples_dir / "losses.png", dpi=80)
    plt.close(figure)
