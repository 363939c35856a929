"""How a song is converted: generator windows over its spectrogram, cross-faded, then Griffin-Lim from its phase.

`convert_audio` is the whole-song reference: it holds the song, its spectrogram and its Griffin-Lim state (about
1 GB for an hour). `convert_file`, which convert.py runs, streams the same steps block by block through
`convert_stream`, each step keeping only the frames it still needs. The STFT frames of a block are computed once
its samples are in; each generator window runs once its frames are in, `batch_size` windows a call; a frame's
cross-faded output is final once no later window covers it; Griffin-Lim runs on blocks of frames with enough
context on both sides that the samples it keeps are those of a whole-song run. So the samples equal
convert_audio's, float rounding aside.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from pop2jazz.audio_files import audio_info, open_audio
from pop2jazz.errors import InputError
from pop2jazz.full_quality import FullQualityMix
from pop2jazz.output_files import audio_bytes, write_audio_blocks
from pop2jazz.spectrogram import (
    Representation,
    at_floor,
    audio_samples,
    griffin_lim,
    image_level_db,
    image_to_db,
    image_to_magnitude,
    image_units_per_db,
    magnitude_to_image,
    read_audio_blocks,
    resample_blocks,
    shift_db,
    stft,
)


def crossfade_window(frames: int) -> torch.Tensor:
    """Strictly positive Hann-shaped weights [frames] for overlap-adding generator windows."""
    return torch.sin(torch.pi * (torch.arange(frames) + 0.5) / frames) ** 2 + 1e-3


def window_step(chunk_frames: int, overlap: float) -> int:
    """Frames between the starts of consecutive generator windows: chunk_frames * (1 - overlap), at least 1."""
    return max(1, int(round(chunk_frames * (1.0 - overlap))))


def window_starts(frames: int, chunk_frames: int, overlap: float) -> list[int]:
    """First frames of the generator windows over an image of `frames` >= chunk_frames frames.

    Every window_step frames, plus one ending at the last frame when the steps do not reach it.
    """
    starts = list(range(0, frames - chunk_frames + 1, window_step(chunk_frames, overlap)))
    if starts[-1] != frames - chunk_frames:
        starts.append(frames - chunk_frames)
    return starts


class AtStrength(torch.nn.Module):
    """A generator at a strength S in [0, 1]: input + S * (generator(input) - input), on images [B, 1, n_bins,
    frames] in [-1, 1] -> the same shape.

    The image is linear in dB (spectrogram.magnitude_to_image), so this moves every bin S of the way, in dB, from
    the song to its conversion: S = 0 gives the song's own image back (the null test), 1 the full conversion.
    Windows are blended before they are overlap-added, which, being linear, equals blending the whole song.
    """

    def __init__(self, generator: torch.nn.Module, strength: float):
        super().__init__()
        self.generator, self.strength = generator, strength

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images + self.strength * (self.generator(images).to(images.dtype) - images)


def with_strength(generator: torch.nn.Module, strength: float = 1.0) -> torch.nn.Module:
    """`generator` itself at strength 1, else AtStrength(generator, strength); raises ValueError outside [0, 1]."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength {strength} is outside [0, 1]")
    return generator if strength == 1.0 else AtStrength(generator, strength).eval()


MAX_LEVEL_SHIFT_DB = 24.0  # a near-silent window (a fade, a pause) is raised at most this much: its noise stays noise


class AtReferenceLevel(torch.nn.Module):
    """A generator that hears every window at the level it was trained at: images [B, 1, n_bins, frames] in
    [-1, 1] -> the same shape.

    Each window is shifted uniformly in dB to `reference_db` (spectrogram.image_level_db: its mean STFT power, dB
    re a full-scale bin), by at most MAX_LEVEL_SHIFT_DB, goes through the generator, and the output is shifted
    back by as much, so the song keeps its own level. The reference is the training chunks' median level
    (ModelConfig.reference_level_db). A loud modern master lies 10 dB or more above GTZAN's pop, outside what the
    generator saw; brought to the reference it lies inside. Cells pushed under the floor by a downward shift stay
    at the floor, so the quietest content of a loud song (under db_min + shift) comes back at db_min + shift.
    """

    def __init__(self, generator: torch.nn.Module, reference_db: float, rep: Representation):
        super().__init__()
        self.generator, self.reference_db, self.rep = generator, float(reference_db), rep

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        level = image_level_db(images.float(), self.rep)  # [B, 1]
        gain_db = (self.reference_db - level).clamp(-MAX_LEVEL_SHIFT_DB, MAX_LEVEL_SHIFT_DB)[..., None, None]
        output = self.generator(shift_db(images, gain_db, self.rep)).to(images.dtype)
        return (output - gain_db * image_units_per_db(self.rep)).clamp(-1.0, 1.0)


def at_reference_level(generator: torch.nn.Module, reference_db: float | None, rep: Representation
                       ) -> torch.nn.Module:
    """`generator` wrapped in AtReferenceLevel at `reference_db`, in eval mode; the generator itself for None."""
    return generator if reference_db is None else AtReferenceLevel(generator, reference_db, rep).eval()


def run_generator(generator: torch.nn.Module, windows: torch.Tensor, bf16: bool = False) -> torch.Tensor:
    """Generator outputs for image windows [B, n_bins, frames] -> [B, n_bins, frames] float32 on the CPU.

    Under torch.inference_mode, on the generator's device, with bf16 autocast on CUDA, and on the CPU too when
    `bf16` (about twice as fast where the CPU has AVX512-BF16 or AMX; outputs move by about 0.5 dB).
    """
    device = next(generator.parameters()).device
    with torch.inference_mode(), torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda" or bf16):
        return generator(windows.to(device).unsqueeze(1)).float().squeeze(1).cpu()


def transform_image(generator: torch.nn.Module, image: torch.Tensor, chunk_frames: int, overlap: float = 0.25,
                    batch_size: int = 4, progress: bool = False) -> torch.Tensor:
    """Run `generator` over a whole-song image [n_bins, frames] (frames >= chunk_frames) -> same shape.

    Windows of `chunk_frames` frames start every chunk_frames * (1 - overlap) frames (the last one ends at the
    last frame); they go through the generator `batch_size` at a time under torch.inference_mode and are
    overlap-added with Hann weights, so joins are cross-faded.
    """
    frames = image.shape[-1]
    if frames < chunk_frames:
        raise InputError(f"image has {frames} frames, fewer than one chunk ({chunk_frames})")
    starts = window_starts(frames, chunk_frames, overlap)
    weight = crossfade_window(chunk_frames)
    total = torch.zeros_like(image)
    weights = torch.zeros(frames)
    for first in tqdm(range(0, len(starts), batch_size), desc="generator", unit="batch", disable=not progress):
        batch_starts = starts[first:first + batch_size]
        windows = torch.stack([image[:, s:s + chunk_frames] for s in batch_starts])
        for start, output in zip(batch_starts, run_generator(generator, windows)):
            total[:, start:start + chunk_frames] += output * weight
            weights[start:start + chunk_frames] += weight
    return total / weights


def song_magnitude(output: torch.Tensor, image: torch.Tensor, spectrum: torch.Tensor,
                   rep: Representation) -> torch.Tensor:
    """The |STFT| [n_fft//2 + 1, frames] to invert for a song: the generator's output image [n_bins, frames] read by
    image_to_magnitude, and what the image cannot hold taken from the song's own complex STFT `spectrum`
    [n_fft//2 + 1, frames] and its `image` (magnitude_to_image of it, [n_bins, frames], as the generator got it):
    cells below the -100 dB floor in both the song and the output keep the song's magnitude, and the Nyquist row,
    which images drop and the model never sees, is the song's moved by the gain in dB that the output gave the
    highest row the image keeps. Without them a song at the model's rate would lose its last 10-11 kHz and its
    quietest cells (about -48 and -73 dB of its energy, more after Griffin-Lim), and a conversion that changes
    nothing (--strength 0) would not give the song back as full_quality's null test asks.
    """
    source = spectrum.abs()
    magnitude = image_to_magnitude(output, rep)
    unseen = at_floor(image) & at_floor(output)
    magnitude[: rep.n_bins] = torch.where(unseen, source[: rep.n_bins], magnitude[: rep.n_bins])
    top = rep.n_bins - 1
    gain_db = image_to_db(output[top].clamp(-1.0, 1.0), rep) - image_to_db(image[top], rep)
    magnitude[rep.n_bins] = source[rep.n_bins] * 10.0 ** (gain_db / 20.0)
    return magnitude


def convert_magnitude(generator: torch.nn.Module, audio: np.ndarray, rep: Representation, overlap: float = 0.25,
                      batch_size: int = 4, progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(generated |STFT|, the input's complex STFT), both [n_fft//2 + 1, frames], for mono audio [samples].

    Songs shorter than one chunk are zero-padded to rep.chunk_samples first, so frames = 1 + max(samples,
    chunk_samples) // hop_length. Frames that are digital silence in the input stay silent.
    """
    padded = np.pad(audio, (0, max(0, rep.chunk_samples - len(audio)))).astype(np.float32)
    spectrum = stft(torch.from_numpy(padded), rep)
    image = magnitude_to_image(spectrum.abs(), rep)
    output = transform_image(generator, image, rep.chunk_frames, overlap, batch_size, progress)
    silent = image.amax(dim=0) <= -1.0
    output[:, silent] = -1.0
    return song_magnitude(output, image, spectrum, rep), spectrum


def convert_audio(generator: torch.nn.Module, audio: np.ndarray, rep: Representation, n_iter: int = 32,
                  overlap: float = 0.25, batch_size: int = 4, progress: bool = False) -> np.ndarray:
    """Style-transfer mono audio [samples] at rep.sample_rate -> audio of exactly the same length.

    Songs shorter than one chunk are zero-padded for the generator and trimmed back. Frames that are digital
    silence in the input stay silent. Phase: `n_iter` Griffin-Lim iterations starting from the input's phase.
    Holds the whole song's spectrogram: the reference that convert_stream reproduces block by block.
    """
    magnitude, spectrum = convert_magnitude(generator, audio, rep, overlap, batch_size, progress)
    device = next(generator.parameters()).device
    result = griffin_lim(magnitude.to(device), spectrum.angle().to(device), n_iter,
                         max(len(audio), rep.chunk_samples), rep)
    return result[: len(audio)].cpu().numpy()


def output_layout(song: Path, rep: Representation, mono: bool = False) -> tuple[int, int]:
    """(sample_rate in Hz, channels) of `song`'s conversion: the song's own (its header's), but at least the model's
    rate (an 8 kHz song written at 8 kHz would lose what the model makes above 4 kHz); the model's (rep.sample_rate,
    1) with `mono` or when the header cannot be read (reading it then says why)."""
    info = audio_info(song)
    return (rep.sample_rate, 1) if mono or info is None else \
        (max(info.sample_rate, rep.sample_rate), info.channels)


def convert_file(generator: torch.nn.Module, song: Path, output: Path, rep: Representation, n_iter: int = 32,
                 overlap: float = 0.25, batch_size: int = 4, progress: bool = False, bf16: bool = False,
                 provenance: dict | None = None, mono: bool = False, keep_high_band: bool = True,
                 replace: bool = True) -> tuple[float, float]:
    """Convert the audio file `song` into `output`, streaming: (seconds of audio, gain applied).

    At `output_layout`'s sample rate and channels. Mono at the model's rate (`mono`, or a song that is mono at
    rep.sample_rate already): the file convert_audio(load_audio(song)) and write_audio would give. Otherwise at
    the song's own rate and channels: its mid converted so, its high band (unless not `keep_high_band`) and side
    signals given back by full_quality.FullQualityMix. Either way in memory that does not grow with the song: read
    in blocks, converted by convert_stream, written through temporary files renamed into place, in the format of
    `output`'s extension (16-bit WAV for .wav), stamped with `provenance` and the input's name. Raises AudioError
    as read_audio_blocks does, OutputFormatError for an extension it cannot write and OutputError when `output`
    cannot be written, WouldOverwriteError when not `replace` and another process wrote `output` meanwhile;
    either way no output file is left. bf16: autocast on the CPU too (see run_generator).
    """
    sample_rate, channels = output_layout(song, rep, mono)
    read, samples = 0, audio_samples(song, sample_rate)
    device = next(generator.parameters()).device

    def counted(converted):
        # converted seconds of the header's length: a fraction for the bar and the browser page's progress (app.py)
        with tqdm(desc=Path(song).name, total=samples / sample_rate, unit="s", disable=not progress,
                  bar_format="{desc}: {n:.0f}/{total:.0f} s of audio [{elapsed}<{remaining}]") as bar:
            for block in converted:
                bar.update(min(len(block) / sample_rate, bar.total - bar.n))  # the header may round the length
                yield block

    if (sample_rate, channels) == (rep.sample_rate, 1):
        def blocks():
            nonlocal read
            for block in read_audio_blocks(song, rep.sample_rate):
                read += len(block)
                yield block

        converted = convert_stream(generator, blocks(), rep, n_iter, overlap, batch_size, device=device, bf16=bf16)
        gain = write_audio_blocks(output, counted(converted), rep.sample_rate,
                                  {**(provenance or {}), "input": str(song)}, size=audio_bytes(samples),
                                  replace=replace)
        return read / rep.sample_rate, gain

    mix = FullQualityMix(sample_rate, channels, rep, keep_high_band)
    info, source = open_audio(song)

    def mids():
        nonlocal read
        for block in resample_blocks(source, info.sample_rate, sample_rate, channels):  # a song below the model's
            read += len(block)                                                           # rate is brought up to it
            yield mix.push_source(block)
        yield mix.finish_source()

    def mixed():
        for block in convert_stream(generator, mids(), rep, n_iter, overlap, batch_size, device=device, bf16=bf16):
            yield mix.push_converted(block)
        yield mix.finish()

    stamp = {**(provenance or {}), "input": str(song), "sample_rate": sample_rate, "channels": channels,
             "high_band": "the song's" if keep_high_band else "none"}
    gain = write_audio_blocks(output, counted(mixed()), sample_rate, stamp, size=audio_bytes(samples * channels),
                              channels=channels, replace=replace)
    return read / sample_rate, gain


def griffin_lim_context(n_iter: int, rep: Representation = Representation()) -> int:
    """Frames of context on each side that make a block's Griffin-Lim samples equal a whole-song run's.

    A block edge spoils the frames whose window reaches past it; an iteration (iSTFT, then STFT) spreads the
    damage by n_fft / hop - 1 frames (3), and the last iSTFT reaches as far again.
    """
    reach = -(-rep.n_fft // rep.hop_length) - 1
    return reach * (n_iter + 1) + 1


class StreamingSTFT:
    """spectrogram.stft (centred frames) of a signal that arrives in pieces; the frames equal a whole-signal STFT.

    push(samples [k]) -> the complex frames [n_fft//2 + 1, m] now complete; finish() -> the rest, which need the
    zero padding after the end. `samples` counts the samples pushed.
    """

    def __init__(self, rep: Representation):
        self.rep = rep
        self.samples = 0
        self.buffer = torch.zeros(rep.n_fft // 2)  # the centred frames' zero padding before sample 0

    def push(self, samples: np.ndarray | torch.Tensor) -> torch.Tensor:
        samples = torch.as_tensor(samples, dtype=torch.float32)
        self.samples += len(samples)
        self.buffer = torch.cat([self.buffer, samples])
        return self._complete_frames()

    def finish(self) -> torch.Tensor:
        self.buffer = torch.cat([self.buffer, torch.zeros(self.rep.n_fft // 2)])
        return self._complete_frames()

    def _complete_frames(self) -> torch.Tensor:
        n_fft, hop = self.rep.n_fft, self.rep.hop_length
        count = 1 + (len(self.buffer) - n_fft) // hop if len(self.buffer) >= n_fft else 0
        if count == 0:
            return torch.zeros(n_fft // 2 + 1, 0, dtype=torch.complex64)
        frames = stft(self.buffer[: (count - 1) * hop + n_fft], self.rep, center=False)
        self.buffer = self.buffer[count * hop:]
        return frames


class StreamingWindows:
    """transform_image over an image that arrives frame by frame, with convert_audio's silence gating.

    push(spectrum [n_fft//2 + 1, m] complex, the song's STFT frames in order) -> (output image [n_bins, k], the
    input image [n_bins, k], spectrum [n_fft//2 + 1, k]) for the frames now final; finish() -> the rest. A frame
    is final once no later window covers it; the last window, which ends at the last frame, can only be placed at
    finish(), so the last chunk_frames frames wait for it. Frames silent in the input (all bins at -1) stay at -1.
    """

    def __init__(self, generator: torch.nn.Module, rep: Representation, overlap: float = 0.25,
                 batch_size: int = 4, bf16: bool = False):
        self.generator, self.rep, self.batch_size, self.bf16 = generator, rep, batch_size, bf16
        self.step = window_step(rep.chunk_frames, overlap)
        self.weight = crossfade_window(rep.chunk_frames)
        self.first = 0  # song frame of column 0 of the buffers below
        self.spectrum = torch.zeros(rep.n_fft // 2 + 1, 0, dtype=torch.complex64)
        self.image = torch.zeros(rep.n_bins, 0)
        self.total = torch.zeros(rep.n_bins, 0)
        self.weights = torch.zeros(0)
        self.pending: list[int] = []  # starts of windows whose frames are in, not yet through the generator
        self.next_start = 0  # the next regular window start not yet pending

    def push(self, spectrum: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        self.spectrum = torch.cat([self.spectrum, spectrum], dim=1)
        self.image = torch.cat([self.image, magnitude_to_image(spectrum.abs(), self.rep)], dim=1)
        self.total = torch.cat([self.total, torch.zeros(self.rep.n_bins, spectrum.shape[1])], dim=1)
        self.weights = torch.cat([self.weights, torch.zeros(spectrum.shape[1])])
        frames = self.first + self.image.shape[1]
        while self.next_start + self.rep.chunk_frames <= frames:
            self.pending.append(self.next_start)
            self.next_start += self.step
        while len(self.pending) >= self.batch_size:
            self._run(self.batch_size)
        unfinished = self.pending[0] if self.pending else self.next_start
        return self._emit(min(unfinished, frames - self.rep.chunk_frames))

    def finish(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        frames = self.first + self.image.shape[1]
        if frames < self.rep.chunk_frames:
            raise InputError(f"the song has {frames} frames, fewer than one chunk ({self.rep.chunk_frames}): "
                             f"pad it first")
        if (frames - self.rep.chunk_frames) % self.step:  # the regular windows stop short of the last frame
            self.pending.append(frames - self.rep.chunk_frames)
        while self.pending:
            self._run(self.batch_size)
        return self._emit(frames)

    def _run(self, count: int) -> None:
        starts, self.pending = self.pending[:count], self.pending[count:]
        chunk = self.rep.chunk_frames
        windows = torch.stack([self.image[:, s - self.first: s - self.first + chunk] for s in starts])
        for start, output in zip(starts, run_generator(self.generator, windows, self.bf16)):
            self.total[:, start - self.first: start - self.first + chunk] += output * self.weight
            self.weights[start - self.first: start - self.first + chunk] += self.weight

    def _emit(self, end: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        count = max(0, end - self.first)
        output = self.total[:, :count] / self.weights[:count]
        image, spectrum = self.image[:, :count], self.spectrum[:, :count]
        output[:, image.amax(dim=0) <= -1.0] = -1.0
        self.spectrum, self.image = self.spectrum[:, count:], self.image[:, count:]
        self.total, self.weights = self.total[:, count:], self.weights[count:]
        self.first += count
        return output, image, spectrum


class StreamingGriffinLim:
    """spectrogram.griffin_lim over a spectrogram that arrives frame by frame, `block_frames` frames at a time.

    Each block runs with griffin_lim_context frames of context on each side, so the samples kept equal those of
    one whole-song run (float rounding aside) at a cost of 2 * context / block_frames more work.
    push(magnitude, init_phase: [n_fft//2 + 1, m], radians) -> the audio samples now final; finish(length) -> the
    rest, `length` samples in all, on the CPU. The iterations run on `device`.
    """

    def __init__(self, rep: Representation, n_iter: int, block_frames: int = 2048,
                 device: torch.device | str = "cpu"):
        self.rep, self.n_iter, self.block_frames, self.device = rep, n_iter, block_frames, torch.device(device)
        self.context = griffin_lim_context(n_iter, rep)
        self.magnitude = torch.zeros(rep.n_fft // 2 + 1, 0)
        self.phase = torch.zeros(rep.n_fft // 2 + 1, 0)
        self.first = 0  # song frame of column 0
        self.done = 0  # columns whose samples were returned; they stay as left context

    def push(self, magnitude: torch.Tensor, init_phase: torch.Tensor) -> torch.Tensor:
        self.magnitude = torch.cat([self.magnitude, magnitude], dim=1)
        self.phase = torch.cat([self.phase, init_phase], dim=1)
        blocks = []
        while self.magnitude.shape[1] >= self.done + self.block_frames + self.context:
            end = self.done + self.block_frames
            columns = end + self.context
            audio = self._invert(self.magnitude[:, :columns], self.phase[:, :columns],
                                 (columns - 1) * self.rep.hop_length)
            blocks.append(audio[self.done * self.rep.hop_length: end * self.rep.hop_length])
            drop = max(0, end - self.context)
            self.magnitude, self.phase = self.magnitude[:, drop:], self.phase[:, drop:]
            self.first, self.done = self.first + drop, end - drop
        return torch.cat(blocks) if blocks else torch.zeros(0)

    def finish(self, length: int) -> torch.Tensor:
        hop = self.rep.hop_length
        return self._invert(self.magnitude, self.phase, length - self.first * hop)[self.done * hop:]

    def _invert(self, magnitude: torch.Tensor, phase: torch.Tensor, length: int) -> torch.Tensor:
        return griffin_lim(magnitude.to(self.device), phase.to(self.device), self.n_iter, length, self.rep).cpu()


def convert_stream(generator: torch.nn.Module, blocks: Iterable[np.ndarray], rep: Representation,
                   n_iter: int = 32, overlap: float = 0.25, batch_size: int = 4, block_frames: int = 2048,
                   device: torch.device | str = "cpu", bf16: bool = False) -> Iterator[np.ndarray]:
    """convert_audio for mono audio arriving in blocks ([samples] at rep.sample_rate, any sizes).

    Yields converted float32 blocks that concatenate to exactly as many samples as came in; songs shorter than
    one chunk are zero-padded for the generator and trimmed back. `block_frames`: frames per Griffin-Lim block
    (2048 = 23.8 s); Griffin-Lim runs on `device`; bf16: see run_generator. Memory stays bounded by the block
    sizes, whatever the song's length.
    """
    transform = StreamingSTFT(rep)
    windows = StreamingWindows(generator, rep, overlap, batch_size, bf16)
    inversion = StreamingGriffinLim(rep, n_iter, block_frames, device)

    def invert(output: torch.Tensor, image: torch.Tensor, spectrum: torch.Tensor) -> torch.Tensor:
        return inversion.push(song_magnitude(output, image, spectrum, rep), spectrum.angle())

    yielded = 0  # never past the samples read: a frame is final only once its samples are in
    for block in blocks:
        audio = invert(*windows.push(transform.push(block)))
        yielded += len(audio)
        yield audio.numpy()
    length = transform.samples
    frames = torch.cat([transform.push(torch.zeros(max(0, rep.chunk_samples - length))), transform.finish()], dim=1)
    tail = torch.cat([invert(*windows.push(frames)), invert(*windows.finish()), inversion.finish(transform.samples)])
    yield tail[: length - yielded].numpy()
