"""Training-time augmentation of spectrogram images: the data levers of train.py (docs/ab.md, issue 24).

All take and return batches of images [B, 1, n_bins, frames] in [-1, 1] (spectrogram.py's dB image), draw their
randomness from torch's global generator (seeded by train.py and restored on --resume), and draw it per image.

- `random_gain`: a uniform dB gain per image, for a generator that has heard every level (real chunks only).
- `pitch_time`: a random pitch shift and tempo change per image, genre-keeping (real chunks only).
- `diff_augment`: DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training",
  arXiv 2006.10738; the remedy Karras et al. 2020's ADA also builds on): translation in time, a time and a
  frequency cut-out, a small gain, applied alike to real and fake images before every discriminator call, and
  differentiable, so the generator's gradient passes through it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pop2jazz.spectrogram import Representation, shift_db

DIFF_TRANSLATION = 1 / 8  # the largest time shift, a share of the frames (DiffAugment's translation ratio)
DIFF_CUTOUT = 1 / 4  # the cut-out's length in time and its height in frequency, a share of each axis
DIFF_GAIN_DB = 3.0  # the largest gain DiffAugment adds


def _uniform(batch: int, largest: float, like: torch.Tensor) -> torch.Tensor:
    """[batch, 1, 1, 1] draws from U(-largest, largest) on `like`'s device, float32."""
    return (torch.rand(batch, 1, 1, 1, device=like.device) * 2.0 - 1.0) * largest


def random_gain(images: torch.Tensor, largest_db: float, rep: Representation = Representation()) -> torch.Tensor:
    """Each image made louder or quieter by a gain drawn from U(-largest_db, largest_db) dB: a uniform shift of
    the dB image, clipped to [-1, 1]; the floor (silence) stays silence. `largest_db` 0 returns the images."""
    if largest_db <= 0:
        return images
    return shift_db(images, _uniform(len(images), largest_db, images), rep)


def resample_image(images: torch.Tensor, pitch: torch.Tensor, tempo: torch.Tensor) -> torch.Tensor:
    """Images [B, 1, n_bins, frames] with each one's pitch multiplied by `pitch` [B] (2 ** (semitones / 12)) and
    its tempo by `tempo` [B] (1.08: 8 % faster) -> the same shape.

    A phase vocoder's time stretch (librosa.effects.time_stretch) keeps each frame's magnitude and resamples the
    frames, so on the magnitude image it is a resampling of the time axis; its pitch shift
    (librosa.effects.pitch_shift: a stretch, then a resampling of the audio) scales the frequency axis. Both are
    done here at once by bilinear resampling of the dB image (F.grid_sample), about the lowest bin and the middle
    frame: output bin k reads bin k / pitch, output frame t reads middle + tempo * (t - middle). Rows and frames
    read past the edges mirror the image (reflection): the few top bins a downward shift leaves, and up to
    (tempo - 1) / 2 of the frames at each end of a faster window.
    """
    batch = len(images)
    theta = torch.zeros(batch, 2, 3, device=images.device)
    theta[:, 0, 0] = tempo  # x (frames) about the middle
    theta[:, 1, 1] = 1.0 / pitch  # y (bins) about the lowest bin, y = -1: y_in + 1 = (y_out + 1) / pitch
    theta[:, 1, 2] = 1.0 / pitch - 1.0
    grid = F.affine_grid(theta, list(images.shape), align_corners=True)
    return F.grid_sample(images, grid.to(images.dtype), mode="bilinear", padding_mode="reflection",
                         align_corners=True).clamp(-1.0, 1.0)


def pitch_time(images: torch.Tensor, semitones: float, stretch: float) -> torch.Tensor:
    """Each image pitch-shifted by up to +-`semitones` and its tempo changed by up to +-`stretch` (a fraction,
    0.08 = 8 %), both drawn uniformly per image (`resample_image`); the images themselves when both are 0. A
    jazz song in another key or at another tempo is still jazz: the genre is kept."""
    if semitones <= 0 and stretch <= 0:
        return images
    batch = len(images)
    pitch = 2.0 ** (_uniform(batch, semitones, images).flatten() / 12.0)
    tempo = 1.0 + _uniform(batch, stretch, images).flatten()
    return resample_image(images, pitch, tempo)


def diff_augment(images: torch.Tensor, rep: Representation = Representation()) -> torch.Tensor:
    """DiffAugment for spectrogram images (Zhao et al. 2020, section 3; its policy "translation,cutout" and a
    gain in place of "color"): per image, a shift in time by up to DIFF_TRANSLATION of the frames (the frames
    shifted in are silence), a cut-out of DIFF_CUTOUT of the frames and one of DIFF_CUTOUT of the bins at random
    places (set to silence), and a gain of up to +-DIFF_GAIN_DB (spectrogram.shift_db: silence stays silence).
    Every step is a shift, a gather or a mask of the input, so gradients flow through to the generator. Same
    shape and dtype as `images`."""
    batch, _, bins, frames = images.shape
    device = images.device
    output = shift_db(images, _uniform(batch, DIFF_GAIN_DB, images), rep)
    largest = int(frames * DIFF_TRANSLATION)
    shift = torch.randint(-largest, largest + 1, (batch, 1, 1, 1), device=device)
    source = torch.arange(frames, device=device).view(1, 1, 1, frames) - shift  # output frame t reads t - shift
    inside = (source >= 0) & (source < frames)
    output = torch.gather(output, 3, source.clamp(0, frames - 1).expand(batch, 1, bins, frames))
    keep = inside
    for axis, size in ((3, frames), (2, bins)):
        length = max(1, int(size * DIFF_CUTOUT))
        start = torch.randint(0, size - length + 1, (batch, 1, 1, 1), device=device)
        position = torch.arange(size, device=device).view([1, 1, 1, 1][:axis] + [size] + [1] * (3 - axis))
        keep = keep & ~((position >= start) & (position < start + length))
    return torch.where(keep, output, torch.full_like(output, -1.0))
