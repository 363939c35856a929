"""The measures of evaluate.py besides the genre judge (judge.py): is it still the same song, did the
generator leave artefacts, how well does it invert?

Every measure here reads a spectrogram image (spectrogram.py: [n_bins, frames] in [-1, 1]) through
`image_to_magnitude`, so real chunks, generator outputs and the re-analysed audio of a conversion are all seen
through the same -100 dB floor.

- `chroma_similarity`: frame-wise cosine similarity of chroma, the content measure.
- `level_changes` and `level_matched`: how much louder a conversion is, and the input at that level alone (the
  control row of evaluate.py's report); `time_smeared`, the input blurred in time alone (another control).
- `checkerboard_power`: the energy at the image's highest spatial frequencies, where the stride-2 transposed
  convolutions of a generator leave their checkerboard pattern.
- `invert` and `inversion_quality`: audio from a generated magnitude by several phase methods, and the spectral
  convergence of each (evaluate.py and benchmark.py).
"""

from __future__ import annotations

import time
from typing import Sequence

import librosa
import numpy as np
import torch

from pop2jazz.spectrogram import (
    Representation,
    griffin_lim,
    image_level_db,
    image_to_db,
    image_to_magnitude,
    shift_db,
    spectral_convergence,
    stft,
)

N_CHROMA = 12
SMEAR_SECONDS = 0.1  # the time_smeared control's moving average


def chroma(magnitude: np.ndarray, rep: Representation = Representation()) -> np.ndarray:
    """Chroma [12, frames] from |STFT| [n_fft//2+1, frames], each frame scaled to a maximum of 1 (0 when silent).

    librosa.feature.chroma_stft with the tuning fixed at A440: estimating it per clip could shift an input and its
    conversion by different amounts and blur the comparison.
    """
    return librosa.feature.chroma_stft(S=magnitude ** 2, sr=rep.sample_rate, n_fft=rep.n_fft, tuning=0.0,
                                       n_chroma=N_CHROMA)


def image_magnitude(image: np.ndarray | torch.Tensor, rep: Representation = Representation()) -> np.ndarray:
    """Spectrogram image [n_bins, frames] in [-1, 1] -> |STFT| [n_fft//2 + 1, frames] as float64 numpy."""
    return image_to_magnitude(torch.as_tensor(np.asarray(image, dtype=np.float32)), rep).double().numpy()


def level_db(image: np.ndarray | torch.Tensor, rep: Representation = Representation()) -> float:
    """Level of an image [n_bins, frames]: 10 log10 of its mean STFT power, in dB re a full-scale bin
    (spectrogram.image_level_db)."""
    return float(image_level_db(image, rep))


def level_changes(inputs: Sequence, outputs: Sequence, rep: Representation = Representation()) -> np.ndarray:
    """How much louder each output chunk is than its input chunk (images [n, n_bins, frames] each): level_db of
    the output minus level_db of the input, [n] in dB."""
    return np.array([level_db(b, rep) - level_db(a, rep) for a, b in zip(inputs, outputs)])


def level_matched(inputs: torch.Tensor, changes: np.ndarray, rep: Representation = Representation()
                  ) -> torch.Tensor:
    """The control for a judge that hears loudness: each input chunk [n, n_bins, frames] made louder or quieter
    by its conversion's level change (`changes` [n] dB, level_changes), and nothing else (spectrogram.shift_db: a
    uniform dB shift, clipped to the image's range, silence kept). Jazz in GTZAN is mostly older, quieter
    recordings, and the MFCCs' first coefficient follows level, so a generator that only turned the volume down
    would score above the unconverted pop; it must beat this control to show it does more."""
    images = torch.as_tensor(np.asarray(inputs, dtype=np.float32))
    return shift_db(images, torch.as_tensor(np.asarray(changes, dtype=np.float32)).view(-1, 1, 1), rep)


def time_smeared(inputs: torch.Tensor, seconds: float = SMEAR_SECONDS, rep: Representation = Representation()
                 ) -> torch.Tensor:
    """The control for a judge that hears blur: each input chunk [n, n_bins, frames] smoothed in time by a moving
    average of `seconds` (in the image's dB, edges averaged over the frames there) -> the same shape. Features
    that ignore the recording channel (judge.py) read the spread of the spectrum in time, which a generator that
    only blurred would also lower; the conversion must beat this control to show it does more than smear."""
    width = 2 * round(seconds * rep.sample_rate / rep.hop_length / 2) + 1  # odd: centred, 9 frames for 0.1 s
    images = torch.as_tensor(np.asarray(inputs, dtype=np.float32))
    return torch.nn.functional.avg_pool1d(images, width, 1, width // 2, count_include_pad=False)


def chroma_similarity(image_a: np.ndarray | torch.Tensor, image_b: np.ndarray | torch.Tensor,
                      rep: Representation = Representation()) -> float:
    """Mean cosine similarity of the chroma vectors of two images [n_bins, frames], frame by frame.

    1 = the same pitch classes at every moment. Frames silent in either image are left out; NaN when all are.
    Chroma is non-negative, so unrelated music still scores well above 0: compare with a floor from
    unrelated clips.
    """
    a, b = chroma(image_magnitude(image_a, rep), rep), chroma(image_magnitude(image_b, rep), rep)
    norms = np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0)
    sounding = norms > 0
    if not sounding.any():
        return float("nan")
    return float(np.mean((a * b).sum(axis=0)[sounding] / norms[sounding]))


INVERSIONS = {  # name -> what it is, for the report
    "librosa_griffinlim": "librosa.griffinlim, random initial phase",
    "source_phase_griffin_lim": "spectrogram.griffin_lim from the input's phase (convert.py)",
    "source_phase": "the input's phase alone (n_iter = 0)",
}


def invert(magnitude: torch.Tensor, source_phase: torch.Tensor, length: int, rep: Representation,
           n_iter: int = 32, seed: int = 0, repeats: int = 1, extra: dict | None = None
           ) -> dict[str, tuple[np.ndarray, float]]:
    """Audio from a generated |STFT| [n_fft//2 + 1, frames] by each of INVERSIONS -> {name: (audio [length], seconds)}.

    source_phase: the input's STFT phase in radians, same shape. librosa.griffinlim runs with its defaults
    (random initial phase, momentum 0.99) seeded by `seed`; both Griffin-Lims run `n_iter` iterations. Each
    method runs `repeats` times and keeps its least time (the least disturbed by other work); `extra`
    {name: function() -> audio} adds methods timed the same way.
    """
    runs = {
        "librosa_griffinlim": lambda: librosa.griffinlim(
            magnitude.numpy(), n_iter=n_iter, hop_length=rep.hop_length, n_fft=rep.n_fft, window="hann",
            center=True, length=length, pad_mode="constant", random_state=seed),
        "source_phase_griffin_lim": lambda: griffin_lim(magnitude, source_phase, n_iter, length, rep).numpy(),
        "source_phase": lambda: griffin_lim(magnitude, source_phase, 0, length, rep).numpy(),
        **(extra or {}),
    }
    results = {}
    for name, run in runs.items():
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            audio = run()
            times.append(time.perf_counter() - start)
        results[name] = (np.asarray(audio, dtype=np.float32), min(times))
    return results


def inversion_quality(magnitude: torch.Tensor, inversions: dict[str, tuple[np.ndarray, float]],
                      rep: Representation) -> dict[str, dict]:
    """{name: {"spectral_convergence_db", "seconds"}}: spectral_convergence between `magnitude` [n_fft//2 + 1,
    frames] and the STFT magnitude of each inversion's audio (see `invert`)."""
    return {name: {"spectral_convergence_db": spectral_convergence(magnitude, stft(torch.from_numpy(audio), rep).abs()),
                   "seconds": seconds} for name, (audio, seconds) in inversions.items()}


def checkerboard_power(images: np.ndarray | torch.Tensor) -> float:
    """Mean power at the three highest spatial frequencies of images [..., H, W]: the period-2 patterns along
    rows, along columns and diagonally, i.e. the 2-D DFT bins (H/2, 0), (0, W/2) and (H/2, W/2), each
    normalised by the number of pixels, averaged over the leading axes.

    A stride-2 transposed convolution whose kernel overlaps unevenly puts its checkerboard there (Odena et al.
    2016); compare a generator's output with its input: 10 log10(output / input) dB above 0 means it added one.
    """
    images = torch.as_tensor(np.asarray(images, dtype=np.float32))
    height, width = images.shape[-2:]
    rows = (-1.0) ** torch.arange(height, dtype=torch.float32)[:, None]
    columns = (-1.0) ** torch.arange(width, dtype=torch.float32)[None, :]
    power = sum((images * sign).mean(dim=(-2, -1)) ** 2 for sign in (rows, columns, rows * columns))
    return float(power.mean())


HOLE_BAND_HZ = (100.0, 8000.0)  # where a mix's loud content is, and what a hole there takes from it
LOUD_WITHIN_DB = 30.0  # a cell is loud within this many dB of its frame's loudest cell in the band
HOLE_DB = 30.0  # a loud cell lowered by more than this is a hole
FRAME_LOSS_DB = 12.0  # a frame whose loud cells lose more than this, in power, has lost its content


def holes(input_image: np.ndarray | torch.Tensor, output_image: np.ndarray | torch.Tensor,
          rep: Representation = Representation()) -> dict[str, float]:
    """How much of the song's loud content a conversion wipes out: images [n_bins, frames] of the input and of
    the written output -> {"loud_cells_dropped": share of the input's loud cells (bins of HOLE_BAND_HZ within
    LOUD_WITHIN_DB of their frame's loudest) that the output lowers by more than HOLE_DB, "frames_losing":
    share of frames whose loud cells lose more than FRAME_LOSS_DB of their summed power, "loud_cells": how many
    there are, "frames": how many frames are not silent}. Frames silent in the input count nowhere. 0 for a
    conversion that keeps every loud part.
    """
    source = image_to_db(np.asarray(input_image, dtype=np.float32), rep)
    output = image_to_db(np.asarray(output_image, dtype=np.float32), rep)
    frequencies = np.arange(rep.n_bins) * rep.sample_rate / rep.n_fft
    band = (frequencies >= HOLE_BAND_HZ[0]) & (frequencies <= HOLE_BAND_HZ[1])
    source, output = source[band], output[band]
    audible = source.max(axis=0) > rep.db_min
    loud = (source >= source.max(axis=0, keepdims=True) - LOUD_WITHIN_DB) & audible
    dropped = loud & (output < source - HOLE_DB)

    def power(db: np.ndarray) -> np.ndarray:  # of each frame's loud cells, [frames]
        return np.where(loud, 10.0 ** (db / 10), 0.0).sum(axis=0)

    frame_loss_db = 10 * np.log10(power(source)[audible] / np.maximum(power(output)[audible], 1e-30))
    count = int(loud.sum())
    return {"loud_cells_dropped": float(dropped.sum() / count) if count else 0.0,
            "frames_losing": float(np.mean(frame_loss_db > FRAME_LOSS_DB)) if audible.any() else 0.0,
            "loud_cells": count, "frames": int(audible.sum())}
