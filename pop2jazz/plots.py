"""The pictures and logs a person looks at: spectrogram images in dB and loss curves (matplotlib, no screen)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from pop2jazz.output_files import atomic_file, write_csv  # noqa: E402
from pop2jazz.spectrogram import Representation, image_to_db  # noqa: E402


def image_db(image: np.ndarray | torch.Tensor, rep: Representation) -> np.ndarray:
    """A spectrogram image [n_bins, frames] in [-1, 1] -> dB re a full-scale bin, [db_min, db_max]."""
    image = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    return image_to_db(image.astype(np.float32), rep)


def show_spectrogram(axis: plt.Axes, image: np.ndarray | torch.Tensor, rep: Representation, title: str = ""):
    """Draw an image [n_bins, frames] on `axis` in dB, time in seconds across, frequency in kHz up: the AxesImage."""
    extent = (0, image.shape[-1] * rep.hop_length / rep.sample_rate, 0, rep.sample_rate / 2000)
    image_artist = axis.imshow(image_db(image, rep), origin="lower", aspect="auto", extent=extent, cmap="magma",
                               vmin=rep.db_min, vmax=rep.db_max)
    axis.set(title=title, xlabel="time (s)", ylabel="frequency (kHz)")
    return image_artist


def save_spectrograms(panels: dict[str, np.ndarray | torch.Tensor], rep: Representation, path: Path,
                      columns: int = 1, dpi: int = 80) -> None:
    """A PNG of spectrogram images in a grid of `columns`, filled row by row, each titled by its key, with one dB
    colour bar; written atomically."""
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(10 if columns == 1 else 5 * columns, 3.5 * rows),
                                sharex=True, sharey=True, squeeze=False, layout="constrained")
    for axis, (title, image) in zip(axes.flat, panels.items()):
        image_artist = show_spectrogram(axis, image, rep, title)
        axis.label_outer()
    for axis in axes.flat[len(panels):]:
        axis.set_axis_off()
    figure.colorbar(image_artist, ax=axes, label="dB", shrink=min(1.0, 3.0 / rows), aspect=20 * min(1.0, 3.0 / rows))
    save_figure(figure, path, dpi)


def save_figure(figure: plt.Figure, path: Path, dpi: int = 80) -> None:
    """Write `figure` as a PNG at `path` atomically (never half-written, see output_files.atomic_file) and close it."""
    try:
        with atomic_file(path) as file:
            figure.savefig(file, format="png", dpi=dpi)
    finally:
        plt.close(figure)


def write_loss_log(history: list[dict], folder: Path, losses: tuple[str, ...], title: str) -> None:
    """`folder`/losses.csv (one row per epoch, every key of the rows) and losses.png (the `losses` per epoch),
    each written atomically."""
    write_csv(folder / "losses.csv", history, list(history[0]))
    save_curves(history, losses, folder / "losses.png", title, "mean loss", "log")


def save_curves(rows: list[dict], keys: tuple[str, ...], path: Path, title: str, ylabel: str,
                yscale: str = "linear") -> None:
    """A PNG of the `keys` of `rows` (dicts with an "epoch", values as numbers or numeric strings) against the
    epoch, one line with markers each, written atomically."""
    figure, axis = plt.subplots(figsize=(8, 4.5))
    epochs = [int(row["epoch"]) for row in rows]
    for name in keys:
        axis.plot(epochs, [float(row[name]) for row in rows], marker="o", label=name)
    axis.set(xlabel="epoch", ylabel=ylabel, yscale=yscale, title=title)
    axis.legend()
    figure.tight_layout()
    save_figure(figure, path)
