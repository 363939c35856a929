"""Turn folders of pop and jazz songs into spectrogram chunks for training.

    uv run audio_preprocessing.py                      # data/pop, data/jazz -> data/{pop,jazz}_{train,val}/
    uv run audio_preprocessing.py --pop ~/gtzan/pop --jazz ~/gtzan/jazz --workers 4

Each song (any format libsndfile reads, and through ffmpeg .m4a, .webm, .wma, ...; any sample rate, any channel
count) becomes mono 22050 Hz audio, then an STFT log-magnitude image (spectrogram.py), cut into chunks of 512
frames (5.94 s) saved as float16 .npy files of shape [512, 512]. A song's tail shorter than a chunk is dropped; a
song shorter than one chunk is skipped with a warning. Files the tools wrote themselves (convert.py outputs,
training samples) are skipped with a warning, so the model never trains on its own output; every other file is
counted as skipped (named with -v). Whole songs (not chunks) are held out for validation, so samples and
evaluation use songs the model never saw. Each output folder gets a representation.json with the spectrogram
parameters and the songs it holds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from pop2jazz.commands import float_range, fraction, non_negative_int, positive_int, run_command
from pop2jazz.preprocessing import preprocess
from pop2jazz.spectrogram import Representation, chunk_frames_for_seconds


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pop", type=Path, default=Path("data/pop"), help="folder of pop songs, searched "
                        "recursively (default: data/pop)")
    parser.add_argument("--jazz", type=Path, default=Path("data/jazz"), help="folder of jazz songs (default: "
                        "data/jazz)")
    parser.add_argument("--output", type=Path, default=Path("data"), help="where <domain>_train/ and <domain>_val/ "
                        "go (default: data)")
    parser.add_argument("--chunk-seconds", type=float_range(0.75), default=6.0,
                        help="chunk length in seconds, rounded down to "
                        "a multiple of 64 frames of 256 samples (default: 6.0 -> 512 frames = 5.94 s)")
    parser.add_argument("--val-fraction", type=fraction, default=0.1, help="fraction of songs per domain held out "
                        "for validation, at least one when there are two or more (default: 0.1)")
    parser.add_argument("--workers", type=positive_int, default=max(1, os.cpu_count() or 1),
                        help="parallel processes (default: one per CPU core)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the validation split (default: 0)")
    parser.add_argument("-v", "--verbose", action="store_true", help="name the files that are not audio, not only "
                        "count them")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    """Preprocess as `args` say and print the summary table; see main() for the return codes."""
    start = time.perf_counter()
    rep = Representation(chunk_frames=chunk_frames_for_seconds(args.chunk_seconds))
    summary = preprocess({"pop": args.pop, "jazz": args.jazz}, args.output, rep, args.val_fraction, args.workers,
                         args.seed, args.verbose)
    elapsed = time.perf_counter() - start
    seconds = sum(entry["seconds"] for entry in summary.values())
    print(f"\n{'domain':<6} {'read':>5} {'skipped':>8} {'short':>6} {'ours':>5} {'other':>6} {'train':>6} {'val':>5} "
          f"chunks   audio")
    for domain, entry in summary.items():
        print(f"{domain:<6} {entry['files_read']:>5} {entry['files_skipped']:>8} {entry['too_short']:>6} "
              f"{entry['own_outputs']:>5} {entry['other_files']:>6} {entry['train_chunks']:>6} "
              f"{entry['val_chunks']:>5}          {entry['seconds'] / 60:.1f} min")
    print("(skipped: unreadable audio; short: under one chunk; ours: written by pop2jazz; other: not audio)")
    print(f"{seconds:.0f} s of audio in {elapsed:.1f} s ({seconds / elapsed:.0f}x real time) -> {args.output}/")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: 0 when the chunks are written, 1 on a user error (nothing written), 130 / 143 when
    interrupted (nothing written either)."""
    return run_command(run, parse_args(argv),
                       interrupted="the earlier chunk folders are as they were")


if __name__ == "__main__":
    sys.exit(main())
