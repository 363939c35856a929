"""What train.py writes after each epoch for a person to listen to and look at: a held-out song converted by the
generator, with its spectrogram before and after, and the run's page, index.html, that shows them all."""

from __future__ import annotations

import argparse
import csv
import html
import time
from pathlib import Path
from urllib.parse import quote

import torch
from torch import nn

from pop2jazz.conversion import convert_audio, transform_image
from pop2jazz.dataset import ChunkFolder
from pop2jazz.output_files import atomic_write_bytes, audio_bytes, write_audio
from pop2jazz.plots import save_spectrograms
from pop2jazz.runs import LATEST
from pop2jazz.spectrogram import Representation, audio_to_image, chunk_to_audio, load_audio

SAMPLE_SECONDS = 30  # of the held-out song
PICTURE_BYTES = 1 << 20  # a generous bound on a spectrogram PNG
PAGE = "index.html"  # the run's page, in its samples folder
PAGE_BYTES = 1 << 20  # a generous bound on the page: about 300 bytes an epoch
# the curves the page shows when they are there: (file, what it shows)
CURVES = (("losses.png", "Losses, the mean of each epoch"),
          ("transfer_rate.png", "Held-out pop chunks after conversion (--eval-every): the share classified jazz, "
                                "the mean P(jazz), the chroma similarity to the input, and the unconverted baseline"))


def sample_bytes(rep: Representation) -> int:
    """About the bytes one epoch's outputs need on disk while they are written: the WAV, its float copy, the PNG,
    the page."""
    return audio_bytes(SAMPLE_SECONDS * rep.sample_rate) + PICTURE_BYTES + PAGE_BYTES


def sample_stem(epoch: int) -> str:
    """The name of an epoch's sample files without extension: epoch_007 (.wav and .png)."""
    return f"epoch_{epoch:03d}"


def write_sample(generator: nn.Module, val: ChunkFolder | None, rep: Representation, folder: Path, epoch: int,
                 n_iter: int, provenance: dict) -> None:
    """`folder`/epoch_NNN.wav and .png: the first held-out pop song (its first 30 s) converted by `generator`.

    Griffin-Lim runs `n_iter` iterations from the song's phase. When the song has moved, the first held-out chunk
    is converted instead, with Griffin-Lim from zero phase. Nothing is written without held-out songs (`val`
    None). The WAV carries `provenance` and the song it came from (output_files.write_audio). Raises AudioError when
    the song cannot be read; the generator is back in training mode either way.
    """
    if val is None:
        return
    songs = [song for song in val.songs if song.is_file()]
    source = str(songs[0]) if songs else f"{val.files[0]} (a held-out chunk)"
    generator.eval()
    try:
        if songs:
            audio = load_audio(songs[0], rep.sample_rate)[: SAMPLE_SECONDS * rep.sample_rate]
            before = audio_to_image(audio, rep)
            converted = convert_audio(generator, audio, rep, n_iter)
            after = audio_to_image(converted, rep)
        else:
            before = torch.from_numpy(val[0])
            after = transform_image(generator, before, rep.chunk_frames)
            converted = chunk_to_audio(after, n_iter, rep)
    finally:
        generator.train()
    stem = Path(folder) / sample_stem(epoch)
    write_audio(stem.with_suffix(".wav"), converted, rep.sample_rate, {**provenance, "input": source})
    save_spectrograms({"held-out pop (input)": before, f"jazz, epoch {epoch}": after}, rep, stem.with_suffix(".png"))


def run_details(args: argparse.Namespace, epoch: int) -> list[str]:
    """The lines under the title of the run's page: where it stands, what it trains, where its checkpoint is."""
    blocks = f", {args.n_blocks} block{'s' * (args.n_blocks != 1)}" if args.generator == "resnet" else ""
    return [f"epoch {epoch} of {args.epochs}; {args.generator} generators of width {args.width}{blocks}, "
            f"discriminators of width {args.disc_width}; lr {args.lr}, lambda_cycle {args.lambda_cycle}, "
            f"lambda_identity {args.lambda_identity}, batch size {args.batch_size}, seed {args.seed}",
            f"checkpoint: {args.checkpoint_dir / LATEST}; each sample is the first held-out pop song (its first "
            f"{SAMPLE_SECONDS} s) converted to jazz by that epoch's generator"]


def write_run_page(folder: Path, title: str, details: list[str], history: list[dict]) -> None:
    """`folder`/index.html, the run's page: `title`, the `details` lines, the curves of CURVES that are in
    `folder`, then every epoch of `history` (rows with an "epoch" and its mean losses), newest first, with its
    figures (and its transfer_rate.csv row, when logged) and, when written, its sample's player and picture.

    Plain static HTML with relative links: it opens from the file system (file://) without a server, and moves
    with the folder. Written atomically: a browser reloading it during training never sees half a page.
    """
    folder = Path(folder)
    rates = {}
    if (folder / "transfer_rate.csv").is_file():
        with open(folder / "transfer_rate.csv", newline="") as file:
            rates = {int(row["epoch"]): row for row in csv.DictReader(file)}
    newest = history[-1]["epoch"] if history else 0
    written = f"page written {time.strftime('%Y-%m-%d %H:%M')}: reload it for the epochs since"
    parts = [f"<h1>{html.escape(title)}</h1>", *(f"<p>{html.escape(line)}</p>" for line in [*details, written])]
    parts.append('<div class="curves">')
    for name, caption in CURVES:
        if (folder / name).is_file():  # the query defeats the browser's cache: these pictures change every epoch
            parts.append(f'<figure><img src="{link(name)}?epoch={newest}" alt="{html.escape(caption)}">'
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    parts.append("</div>")
    parts.append("<h2>Epochs, newest first</h2>")
    for row in reversed(history):
        epoch, stem = row["epoch"], sample_stem(row["epoch"])
        figures = [*(f"{key} {four_digits(value)}" for key, value in row.items() if key != "epoch"),
                   *(f"{key} {four_digits(value)}" for key, value in rates.get(epoch, {}).items() if key != "epoch")]
        parts += [f'<section id="{stem}"><h3>Epoch {epoch}</h3>', f"<p>{html.escape(' · '.join(figures))}</p>"]
        if (folder / f"{stem}.wav").is_file():
            parts.append(f'<audio controls preload="metadata" src="{link(stem + ".wav")}"></audio>')
        if (folder / f"{stem}.png").is_file():
            parts.append(f'<img src="{link(stem + ".png")}" loading="lazy" alt="spectrograms of the held-out song, '
                         f'before and after epoch {epoch}">')
        if not any((folder / f"{stem}{suffix}").is_file() for suffix in (".wav", ".png")):
            parts.append("<p>no sample this epoch</p>")
        parts.append("</section>")
    page = PAGE_TEMPLATE.format(title=html.escape(title), body="\n".join(parts))
    atomic_write_bytes(folder / PAGE, page.encode())


def link(name: str) -> str:
    """A file name as a relative link in an HTML attribute: percent-encoded, then escaped."""
    return html.escape(quote(name), quote=True)


def four_digits(value) -> str:
    """A figure for the page: 4 significant digits ('0.3127', '2e-04'), as given when it is not a number."""
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return str(value)


PAGE_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
img {{ max-width: 100%; }}
audio {{ width: 100%; }}
.curves {{ display: flex; flex-wrap: wrap; gap: 1rem; }}
.curves figure {{ flex: 1 1 20rem; margin: 0; }}
figcaption {{ color: #555; font-size: 0.9rem; }}
section {{ border-top: 1px solid #ddd; padding: 0.5rem 0 1rem; }}
section p {{ color: #555; font-size: 0.9rem; }}
</style>
</head>
<body>
{body}
</body>
</html>
"""
