"""Turn a song into jazz (or jazz into pop) with a trained CycleGAN generator.

    uv run convert.py song.wav                      # -> song_jazz.wav beside it
    uv run convert.py song.flac -o out/jazzy.wav --griffin-lim-iters 64
    uv run convert.py jazz.wav --direction jazz2pop --checkpoint checkpoints/latest.pt

Any length, any format soundfile reads. The song's spectrogram is cut into overlapping 512-frame windows, each
goes through the generator, and the windows are cross-faded back together; the audio is rebuilt by Griffin-Lim
starting from the song's own phase. The output is a mono 16-bit WAV at the sample rate the checkpoint was trained
with (22050 Hz by default), exactly as long as the input, peak-normalised below full scale when it would clip.
Songs are streamed (streaming.py): memory stays the same for a 3-minute song and for an hour-long one.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from model_cyclegan import build_generator, load_checkpoint
from speed import keep_freed_memory
from spectrogram import (AudioError, Representation, griffin_lim, image_to_magnitude, magnitude_to_image,
                         read_audio_blocks, stft, write_wav_blocks)
from streaming import convert_stream, crossfade_window, run_generator, window_starts


class OutputError(OSError):
    """The output file cannot be written; the message names it and says what to do."""


DIRECTIONS = {"pop2jazz": ("generator_ab", "jazz"), "jazz2pop": ("generator_ba", "pop")}


def pick_device(name: str = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU; otherwise torch.device(name)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_generator(path: Path, direction: str = "pop2jazz", device: torch.device | str = "cpu"):
    """(generator in eval mode on `device`, Representation) from a train.py checkpoint.

    Raises FileNotFoundError / ValueError (see model_cyclegan.load_checkpoint) and ValueError for an unknown
    direction.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}: use one of {', '.join(DIRECTIONS)}")
    state = load_checkpoint(path, device)
    generator = build_generator(state["model"])
    generator.load_state_dict(state[DIRECTIONS[direction][0]])
    return generator.to(device).eval(), Representation.from_dict(state["representation"])


def transform_image(generator: torch.nn.Module, image: torch.Tensor, chunk_frames: int, overlap: float = 0.25,
                    batch_size: int = 4, progress: bool = False) -> torch.Tensor:
    """Run `generator` over a whole-song image [n_bins, frames] (frames >= chunk_frames) -> same shape.

    Windows of `chunk_frames` frames start every chunk_frames * (1 - overlap) frames (the last one ends at the
    last frame); they go through the generator `batch_size` at a time under torch.inference_mode and are
    overlap-added with Hann weights, so joins are cross-faded.
    """
    frames = image.shape[-1]
    if frames < chunk_frames:
        raise ValueError(f"image has {frames} frames, fewer than one chunk ({chunk_frames})")
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
    return image_to_magnitude(output, rep), spectrum


def convert_audio(generator: torch.nn.Module, audio: np.ndarray, rep: Representation, n_iter: int = 32,
                  overlap: float = 0.25, batch_size: int = 4, progress: bool = False) -> np.ndarray:
    """Style-transfer mono audio [samples] at rep.sample_rate -> audio of exactly the same length.

    Songs shorter than one chunk are zero-padded for the generator and trimmed back. Frames that are digital
    silence in the input stay silent. Phase: `n_iter` Griffin-Lim iterations starting from the input's phase.
    Holds the whole song's spectrogram: the reference that streaming.convert_stream reproduces block by block.
    """
    magnitude, spectrum = convert_magnitude(generator, audio, rep, overlap, batch_size, progress)
    device = next(generator.parameters()).device
    result = griffin_lim(magnitude.to(device), spectrum.angle().to(device), n_iter,
                         max(len(audio), rep.chunk_samples), rep)
    return result[: len(audio)].cpu().numpy()


def convert_file(generator: torch.nn.Module, song: Path, output: Path, rep: Representation, n_iter: int = 32,
                 overlap: float = 0.25, batch_size: int = 4, progress: bool = False, bf16: bool = False
                 ) -> tuple[float, float]:
    """Convert the audio file `song` into the 16-bit WAV `output`, streaming: (seconds of audio, gain applied).

    The file convert_audio(load_audio(song)) and write_wav would give, in memory that does not grow with the
    song: read in blocks, converted by streaming.convert_stream, written through temporary files renamed into
    place. Raises AudioError as read_audio_blocks does and OSError when `output` cannot be written; either way
    no output file is left. bf16: autocast on the CPU too (see streaming.run_generator).
    """
    read = 0

    def blocks():
        nonlocal read
        with tqdm(desc=Path(song).name, unit="s", disable=not progress,
                  bar_format="{desc}: {n:.0f} s of audio [{elapsed}, {rate_fmt}]") as bar:
            for block in read_audio_blocks(song, rep.sample_rate):
                read += len(block)
                bar.update(len(block) / rep.sample_rate)
                yield block

    device = next(generator.parameters()).device
    converted = convert_stream(generator, blocks(), rep, n_iter, overlap, batch_size, device=device, bf16=bf16)
    gain = write_wav_blocks(output, converted, rep.sample_rate)
    return read / rep.sample_rate, gain


def output_path_for(song: Path, direction: str) -> Path:
    """song.wav -> song_jazz.wav (pop2jazz) or song_pop.wav (jazz2pop), beside the input."""
    return song.with_name(f"{song.stem}_{DIRECTIONS[direction][1]}.wav")


def check_output(song: Path, output: Path, overwrite: bool) -> None:
    """Raise FileExistsError when writing `output` would replace `song` (also through a link) or, unless
    `overwrite`, any existing file."""
    same = output.resolve() == song.resolve() or (output.exists() and song.exists() and os.path.samefile(output, song))
    if same:
        raise FileExistsError(f"{output} is the input song: refusing to write over it; pass another -o")
    if output.exists() and not overwrite:
        raise FileExistsError(f"{output} exists: pass --overwrite to replace it, or -o to write elsewhere")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("songs", nargs="+", type=Path, help="audio files to convert (wav, flac, ogg, mp3, au, ...)")
    parser.add_argument("-o", "--output", type=Path, help="output WAV (one song only; default: <song>_jazz.wav "
                        "beside the input, <song>_pop.wav for jazz2pop)")
    parser.add_argument("--checkpoint", type=Path, default=Path("checkpoints/latest.pt"),
                        help="train.py checkpoint (default: checkpoints/latest.pt)")
    parser.add_argument("--direction", choices=list(DIRECTIONS), default="pop2jazz",
                        help="pop2jazz uses generator_ab, jazz2pop generator_ba (default: pop2jazz)")
    parser.add_argument("--griffin-lim-iters", type=int, default=32, help="Griffin-Lim iterations from the "
                        "source phase; 0 keeps the source phase as it is (default: 32)")
    parser.add_argument("--overlap", type=float, default=0.25, help="fraction of a window shared with the next "
                        "one, cross-faded (default: 0.25)")
    parser.add_argument("--batch-size", type=int, default=4, help="windows per generator call (default: 4)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda (default: auto)")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast on the CPU as on CUDA: about 2x faster "
                        "where the CPU has AVX512-BF16 or AMX, output spectrograms move by about 0.5 dB")
    parser.add_argument("--compile", action="store_true", help="torch.compile the generator: about 20 %% faster "
                        "after a start of half a minute; worth it for long songs or many")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    args = parser.parse_args(argv)
    if args.output is not None and len(args.songs) > 1:
        parser.error("-o/--output takes one song; convert several songs without -o")
    if not 0.0 <= args.overlap < 1.0:
        parser.error("--overlap must be in [0, 1)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = pick_device(args.device)
    keep_freed_memory()
    try:
        generator, rep = load_generator(args.checkpoint, args.direction, device)
        generator = torch.compile(generator, dynamic=True) if args.compile else generator  # any last batch size
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    failed = 0
    for song in args.songs:
        output = args.output or output_path_for(song, args.direction)
        start = time.perf_counter()
        try:
            check_output(song, output, args.overwrite)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    seconds, gain = convert_file(generator, song, output, rep, args.griffin_lim_iters, args.overlap,
                                                 args.batch_size, progress=True, bf16=args.bf16)
                except OSError as error:
                    raise OutputError(f"cannot write {output}: {error.strerror or error}; pass -o with a "
                                      f"writable place") from error
            for warning in caught:
                print(f"warning: {warning.message}", file=sys.stderr)
        except (AudioError, FileExistsError, OutputError) as error:
            print(f"error: {error}", file=sys.stderr)
            failed += 1
            continue
        elapsed = time.perf_counter() - start
        note = f", scaled by {gain:.2f} ({20 * np.log10(gain):.1f} dB) to avoid clipping" if gain < 1.0 else ""
        print(f"{song} -> {output}: {seconds:.1f} s at {rep.sample_rate} Hz in {elapsed:.1f} s "
              f"({seconds / elapsed:.1f}x real time){note}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
