"""Turn a song into jazz (or jazz into pop) with a trained CycleGAN generator.

    uv run convert.py song.wav                      # -> song_jazz.wav beside it
    uv run convert.py song.flac -o out/jazzy.wav --griffin-lim-iters 64
    uv run convert.py jazz.wav --direction jazz2pop --checkpoint checkpoints/latest.pt

Any length, any format soundfile reads. The song's spectrogram is cut into overlapping 512-frame windows, each
goes through the generator, and the windows are cross-faded back together; the audio is rebuilt by Griffin-Lim
starting from the song's own phase. The output is a mono 16-bit WAV at the sample rate the checkpoint was trained
with (22050 Hz by default), exactly as long as the input, peak-normalised below full scale when it would clip.
Songs are streamed (conversion.py): memory stays the same for a 3-minute song and for an hour-long one.
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

from checkpoint import DIRECTIONS, load_generator
from conversion import convert_file
from runtime import keep_freed_memory, pick_device
from spectrogram import AudioError


class OutputError(OSError):
    """The output file cannot be written; the message names it and says what to do."""


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
