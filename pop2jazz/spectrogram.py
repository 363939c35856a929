"""The spectrogram representation: audio <-> normalised STFT log-magnitude images, and back.

Everything the GAN sees is defined here, once. The constants below are the defaults; the values a dataset or a
checkpoint was made with travel with it as a `Representation` (JSON next to the .npy chunks, a dict inside each
checkpoint), so conversion always inverts exactly what training saw.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import soxr
import torch

from pop2jazz.audio_files import audio_info, open_audio
from pop2jazz.errors import InputError

SAMPLE_RATE = 22050  # Hz
N_FFT = 1024  # 46.4 ms Hann window, 21.5 Hz per bin; images keep its first 512 bins (0 .. 11002 Hz)
HOP_LENGTH = 256  # 11.6 ms; 75 % overlap, what Griffin-Lim needs to converge well
CHUNK_FRAMES = 512  # frames per image: 512 * 256 = 131072 samples = 5.94 s, "a 6-second chunk"
DB_MIN = -100.0  # dB below a full-scale bin; quieter bins are clipped to this floor (-1 in the image)
DB_MAX = 0.0  # dB of the loudest possible bin (|STFT| = sum of the window); maps to +1

@dataclasses.dataclass(frozen=True)
class Representation:
    """The parameters of the spectrogram representation, saved with every dataset and checkpoint.

    A chunk is an image of shape [n_bins, chunk_frames] = [n_fft // 2, chunk_frames] with values in [-1, 1]:
    the STFT magnitude (Hann window, centred frames) in dB relative to a full-scale bin, linearly mapped from
    [db_min, db_max] onto [-1, 1].
    """

    sample_rate: int = SAMPLE_RATE
    n_fft: int = N_FFT
    hop_length: int = HOP_LENGTH
    chunk_frames: int = CHUNK_FRAMES
    db_min: float = DB_MIN
    db_max: float = DB_MAX

    @property
    def n_bins(self) -> int:
        """Frequency rows of an image: n_fft // 2 (Nyquist bin dropped)."""
        return self.n_fft // 2

    @property
    def chunk_samples(self) -> int:
        """Audio samples one chunk covers: chunk_frames * hop_length."""
        return self.chunk_frames * self.hop_length

    @property
    def chunk_seconds(self) -> float:
        return self.chunk_samples / self.sample_rate

    @property
    def magnitude_ref(self) -> float:
        """|STFT| of the loudest possible bin: the sum of the periodic Hann window, n_fft / 2."""
        return self.n_fft / 2

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "Representation":
        """Build from a saved dict; raises ValueError naming missing or unknown keys."""
        names = {f.name for f in dataclasses.fields(cls)}
        if set(values) != names:
            raise ValueError(f"representation keys {sorted(values)} do not match {sorted(names)}")
        return cls(**values)


def chunk_frames_for_seconds(seconds: float, hop_length: int = HOP_LENGTH, sample_rate: int = SAMPLE_RATE) -> int:
    """Frames per chunk for a chunk length in seconds, rounded down to a multiple of 64 (6.0 s -> 512).

    A multiple of 64 survives the generators' 2 down-samplings, the PatchGAN's 3 and a 6-level U-Net.
    Raises InputError when that leaves fewer than 64 frames (under about 0.75 s).
    """
    frames = int(seconds * sample_rate / hop_length) // 64 * 64
    if frames < 64:
        raise InputError(f"chunk length {seconds} s is too short: at least {64 * hop_length / sample_rate:.2f} s")
    return frames


class Unchanged:
    """A stand-in for soxr.ResampleStream between equal rates: returns its input."""

    def resample_chunk(self, samples: np.ndarray, last: bool = False) -> np.ndarray:
        return samples


def resampler(from_rate: int, to_rate: int, channels: int = 1):
    """soxr's streaming resampler (VHQ, float32, linear phase), whose output equals its one-shot resampler's."""
    if from_rate == to_rate:
        return Unchanged()
    return soxr.ResampleStream(from_rate, to_rate, channels, dtype="float32", quality="VHQ")


def resample_blocks(blocks: Iterable[np.ndarray], from_rate: int, to_rate: int, channels: int = 1
                    ) -> Iterator[np.ndarray]:
    """Blocks ([samples], or [samples, channels]) at `from_rate` Hz resampled to `to_rate` Hz as they come, by
    `resampler`; the flush at the end has the blocks' shape."""
    if from_rate == to_rate:
        yield from blocks
        return
    stream, shape = resampler(from_rate, to_rate, channels), (0,)
    for block in blocks:
        shape = (0, *block.shape[1:])
        yield stream.resample_chunk(block)
    yield stream.resample_chunk(np.zeros(shape, np.float32), last=True)


def read_audio_blocks(path: Path, sample_rate: int = SAMPLE_RATE, block_samples: int = 1 << 18
                      ) -> Iterator[np.ndarray]:
    """Read any audio file (audio_files.open_audio: libsndfile, else ffmpeg) as mono float32 blocks at
    `sample_rate` Hz, one block in memory at a time.

    Blocks hold about `block_samples` samples of the file ([samples] each; the last is shorter); they concatenate
    to what `load_audio` returns. Channels are averaged; other rates are resampled with soxr's streaming
    resampler (VHQ), whose output equals its one-shot resampler's. Values as stored (an integer file's full
    scale is +-1.0). Raises AudioError naming the file when it is missing, empty, unreadable (when it needs
    ffmpeg and ffmpeg is missing: the line that installs it), has no frames or holds non-finite samples
    (possibly after earlier blocks were yielded).
    """
    info, blocks = open_audio(path, block_samples)
    yield from resample_blocks((block.mean(axis=1, dtype=np.float32) for block in blocks), info.sample_rate,
                               sample_rate)


def audio_samples(path: Path, sample_rate: int = SAMPLE_RATE) -> int:
    """Samples a file holds once read at `sample_rate`, from its header (0 when it cannot be read)."""
    info = audio_info(path)
    return 0 if info is None else round(info.frames / info.sample_rate * sample_rate)


def load_audio(path: Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read any audio file (libsndfile, else ffmpeg) as mono float32 at `sample_rate` Hz: shape [samples].

    The concatenated `read_audio_blocks`; raises AudioError as it does.
    """
    return np.concatenate(list(read_audio_blocks(path, sample_rate)))


def stft(audio: torch.Tensor | np.ndarray, rep: Representation = Representation(), center: bool = True
         ) -> torch.Tensor:
    """Complex STFT, Hann window: [..., samples] -> [..., n_fft//2 + 1, frames]. Wraps torch.stft.

    center=True (the representation): frames centred on samples 0, hop, 2 hop, ... with zero padding,
    frames = 1 + samples // hop_length. center=False: frames start at those samples, no padding,
    frames = 1 + (samples - n_fft) // hop_length; on an already padded signal it gives the same frames.
    """
    audio = torch.as_tensor(audio)
    window = torch.hann_window(rep.n_fft, device=audio.device, dtype=audio.dtype)
    return torch.stft(audio, rep.n_fft, rep.hop_length, window=window, center=center, pad_mode="constant",
                      return_complex=True)


def istft(spectrum: torch.Tensor, length: int, rep: Representation = Representation()) -> torch.Tensor:
    """Inverse of `stft`: [..., n_fft//2 + 1, frames] complex -> [..., length] real. Wraps torch.istft."""
    window = torch.hann_window(rep.n_fft, device=spectrum.device, dtype=spectrum.real.dtype)
    return torch.istft(spectrum, rep.n_fft, rep.hop_length, window=window, center=True, length=length)


def image_to_db(image, rep: Representation = Representation()):
    """The dB↔image mapping, one way: image values in [-1, 1] -> dB re a full-scale bin in [db_min, db_max]
    (-1 is the floor db_min, +1 is db_max). Works alike on torch tensors and numpy arrays of any shape."""
    return (image + 1.0) / 2.0 * (rep.db_max - rep.db_min) + rep.db_min


def db_to_image(db, rep: Representation = Representation()):
    """The dB↔image mapping, the other way: dB re a full-scale bin -> image values (not clipped: [-1, 1] for dB in
    [db_min, db_max]). Works alike on torch tensors and numpy arrays of any shape."""
    return 2.0 * (db - rep.db_min) / (rep.db_max - rep.db_min) - 1.0


def image_units_per_db(rep: Representation = Representation()) -> float:
    """How far an image value moves for a gain of 1 dB: 0.02 with the default 100-dB range."""
    return 2.0 / (rep.db_max - rep.db_min)


def at_floor(image):
    """Where images [...] in [-1, 1] are at the floor (silence, db_min or below), allowing for the rounding of a
    generator's output: a boolean mask of the same shape. Works alike on torch tensors and numpy arrays."""
    return image <= -1.0 + 1e-6


def shift_db(images: torch.Tensor, gain_db, rep: Representation = Representation()) -> torch.Tensor:
    """Images [..., n_bins, frames] in [-1, 1] made louder by `gain_db` (dB: a float or a tensor that broadcasts,
    e.g. [B, 1, 1, 1]): every cell moved by the same amount in dB and clipped to [-1, 1], the floor (silence)
    left where it is, since silence stays silence at any gain."""
    shifted = (images + gain_db * image_units_per_db(rep)).clamp(-1.0, 1.0)
    return torch.where(images <= -1.0, images, shifted.to(images.dtype))


def image_level_db(image, rep: Representation = Representation()):
    """The level of images [..., n_bins, frames] in [-1, 1]: 10 log10 of their mean STFT power over the last two
    axes, in dB re a full-scale bin -> [...] (a float for one image). The floor (-1) counts as silence, as in
    `image_to_magnitude`; the Nyquist bin, which images drop, counts nothing. Works alike on torch tensors (and
    keeps their gradient) and numpy arrays."""
    if isinstance(image, torch.Tensor):
        power = torch.where(at_floor(image), 0.0, 10.0 ** (image_to_db(image.clamp(-1.0, 1.0), rep) / 10.0))
        return 10.0 * torch.log10(power.sum(dim=(-2, -1)) / (image.shape[-2] + 1) / image.shape[-1] + 1e-30)
    return image_level_db(torch.as_tensor(np.asarray(image, dtype=np.float32)), rep).numpy()


def magnitude_to_image(magnitude: torch.Tensor, rep: Representation = Representation()) -> torch.Tensor:
    """|STFT| [..., n_fft//2 + 1 or n_fft//2, frames] -> image in [-1, 1] of shape [..., n_fft//2, frames].

    Drops the Nyquist bin when present. Never returns NaN or inf (silence maps to -1).
    """
    if magnitude.shape[-2] == rep.n_bins + 1:
        magnitude = magnitude[..., : rep.n_bins, :]
    floor = rep.magnitude_ref * 10.0 ** (rep.db_min / 20.0)
    db = 20.0 * torch.log10(torch.clamp(magnitude, min=floor) / rep.magnitude_ref)
    return torch.clamp(db_to_image(db, rep), -1.0, 1.0)


def image_to_magnitude(image: torch.Tensor, rep: Representation = Representation()) -> torch.Tensor:
    """Inverse of `magnitude_to_image`: [..., n_fft//2, frames] in [-1, 1] -> |STFT| [..., n_fft//2 + 1, frames].

    The floor (-1) becomes exact silence (0) and a zero Nyquist row is appended.
    """
    image = torch.clamp(image, -1.0, 1.0)
    db = image_to_db(image, rep)
    magnitude = rep.magnitude_ref * 10.0 ** (db / 20.0)
    magnitude = torch.where(at_floor(image), torch.zeros_like(magnitude), magnitude)
    return torch.nn.functional.pad(magnitude, (0, 0, 0, 1))


def audio_to_image(audio: np.ndarray | torch.Tensor, rep: Representation = Representation()) -> torch.Tensor:
    """Mono audio [samples] at rep.sample_rate -> image [n_fft//2, 1 + samples // hop_length] in [-1, 1]."""
    return magnitude_to_image(stft(torch.as_tensor(audio, dtype=torch.float32), rep).abs(), rep)


def split_chunks(image: torch.Tensor, rep: Representation = Representation()) -> torch.Tensor:
    """Cut an image [n_bins, frames] into floor(frames / chunk_frames) chunks [n, n_bins, chunk_frames].

    The tail shorter than a chunk is dropped.
    """
    count = image.shape[-1] // rep.chunk_frames
    chunks = image[..., : count * rep.chunk_frames].reshape(image.shape[0], count, rep.chunk_frames)
    return chunks.permute(1, 0, 2).contiguous()


def griffin_lim(magnitude: torch.Tensor, init_phase: torch.Tensor | None, n_iter: int, length: int,
                rep: Representation = Representation(), momentum: float = 0.99) -> torch.Tensor:
    """Audio whose STFT magnitude approximates `magnitude`, by fast Griffin-Lim.

    magnitude: [n_fft//2 + 1, frames] |STFT|; init_phase: same shape, radians (e.g. the source song's phase),
    or None for zero phase. n_iter = 0 returns the inverse STFT with the initial phase. Returns [length] samples.
    Griffin & Lim 1984, with the momentum ("fast Griffin-Lim") of Perraudin, Balazs & Sondergaard 2013, as in
    librosa.griffinlim, which cannot start from a given phase.
    """
    angles = torch.polar(torch.ones_like(magnitude), init_phase) if init_phase is not None else \
        torch.ones_like(magnitude, dtype=torch.complex64)
    previous = torch.zeros_like(angles)
    for _ in range(n_iter):
        rebuilt = stft(istft(magnitude * angles, length, rep), rep)
        accelerated = rebuilt - (momentum / (1 + momentum)) * previous
        previous = rebuilt
        angles = torch.sgn(accelerated)  # z / |z|, 0 for 0: one pass instead of abs, add and divide
    return istft(magnitude * angles, length, rep)


def chunk_to_audio(image: torch.Tensor, n_iter: int, rep: Representation = Representation()) -> torch.Tensor:
    """A chunk image [n_bins, chunk_frames] with no phase of its own (a generated or converted chunk) -> audio
    [(chunk_frames - 1) * hop_length] samples, by griffin_lim from zero phase. Centred STFT frames: that many
    samples give back exactly chunk_frames frames. Songs, which have a phase, go through conversion.py instead."""
    length = (image.shape[-1] - 1) * rep.hop_length
    return griffin_lim(image_to_magnitude(image, rep), None, n_iter, length, rep)


def spectral_convergence(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    """Spectral convergence in dB: 20 log10(||ref - est||_F / ||ref||_F); lower (more negative) is better.

    Both are magnitudes of the same shape. Sturmel & Daudet 2011; the form of Arik et al. 2019 (arXiv 1808.06719).
    """
    error = torch.linalg.vector_norm(reference - estimate)
    norm = torch.linalg.vector_norm(reference)
    return float(20.0 * torch.log10(error / norm.clamp_min(1e-12)).clamp_min(-300.0))
