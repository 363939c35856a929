"""Turn folders of pop and jazz songs into spectrogram chunks for training.

    uv run audio_preprocessing.py                      # data/pop, data/jazz -> data/{pop,jazz}_{train,val}/
    uv run audio_preprocessing.py --pop ~/gtzan/pop --jazz ~/gtzan/jazz --workers 4

Each song (any format soundfile reads, any sample rate, any channel count) becomes mono 22050 Hz audio, then an
STFT log-magnitude image (spectrogram.py), cut into chunks of 512 frames (5.94 s) saved as float16 .npy files of
shape [512, 512]. A song's tail shorter than a chunk is dropped; a song shorter than one chunk is skipped with a
warning. Whole songs (not chunks) are held out for validation, so samples and evaluation use songs the model
never saw. Each output folder gets a representation.json with the spectrogram parameters and the songs it holds.
"""

from __future__ import annotations

import argparse
import io
import random
import shutil
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from data import LISTING, find_audio_files, write_listing
from outputs import atomic_write_bytes
from spectrogram import (AudioError, Representation, audio_to_image, chunk_frames_for_seconds, load_audio,
                         split_chunks)


def chunk_song(path: Path, rep: Representation) -> tuple[np.ndarray, float, list[str]]:
    """Chunks of one song: ([n, n_bins, chunk_frames] float16 in [-1, 1], duration in seconds, warnings).

    Raises AudioError naming the file when it cannot be read.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audio = load_audio(path, rep.sample_rate)
    chunks = split_chunks(audio_to_image(audio, rep), rep).numpy().astype(np.float16)
    return chunks, len(audio) / rep.sample_rate, [str(warning.message) for warning in caught]


def _worker(job: tuple[Path, Representation]) -> tuple[Path, np.ndarray | None, float, list[str], str | None]:
    path, rep = job
    try:
        chunks, seconds, notes = chunk_song(path, rep)
        return path, chunks, seconds, notes, None
    except AudioError as error:
        return path, None, 0.0, [], str(error)


def _init_worker() -> None:
    torch.set_num_threads(1)  # one process per core does the parallel work


def _save_npy(path: Path, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array)
    atomic_write_bytes(path, buffer.getvalue())


def _replace_folder(staging: Path, final: Path) -> None:
    """Move `staging` to `final`, replacing a folder this script made earlier but nothing else."""
    if final.exists():
        if not (final / LISTING).is_file():
            raise FileExistsError(f"{final} exists and was not made by audio_preprocessing.py: move it away or "
                                  f"pass another --output")
        shutil.rmtree(final)
    staging.rename(final)


def preprocess(inputs: dict[str, Path], output: Path, rep: Representation, val_fraction: float = 0.1,
               workers: int = 2, seed: int = 0) -> dict:
    """Chunk every song of each domain into `output`/<domain>_train and `output`/<domain>_val.

    Returns a summary {domain: {"files_read", "files_skipped", "too_short", "train_chunks", "val_chunks",
    "seconds"}}. Unreadable files are skipped with a warning naming them. Raises FileNotFoundError when an input
    folder is missing or empty, ValueError when a domain yields no chunk (nothing is written then).
    """
    files = {domain: find_audio_files(folder) for domain, folder in inputs.items()}
    output.mkdir(parents=True, exist_ok=True)
    staging = {domain: Path(output) / f".{domain}_staging" for domain in inputs}
    for folder in staging.values():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
    summary = {domain: {"files_read": 0, "files_skipped": 0, "too_short": 0, "train_chunks": 0, "val_chunks": 0,
                        "seconds": 0.0} for domain in inputs}
    chunked: dict[str, dict[Path, list[str]]] = {domain: {} for domain in inputs}
    jobs = [(path, rep) for domain in inputs for path in files[domain]]
    domain_of = {path: domain for domain in inputs for path in files[domain]}
    try:
        with ProcessPoolExecutor(max(1, workers), initializer=_init_worker) as pool:
            results = pool.map(_worker, jobs, chunksize=1)
            for path, chunks, seconds, notes, error in tqdm(results, total=len(jobs), desc="chunking", unit="song"):
                domain, entry = domain_of[path], summary[domain_of[path]]
                for note in notes:
                    tqdm.write(f"warning: {note}")
                if error is not None:
                    tqdm.write(f"skipped: {error}")
                    entry["files_skipped"] += 1
                    continue
                entry["files_read"] += 1
                entry["seconds"] += seconds
                if len(chunks) == 0:
                    tqdm.write(f"skipped: {path}: {seconds:.2f} s is shorter than one chunk "
                               f"({rep.chunk_seconds:.2f} s)")
                    entry["too_short"] += 1
                    continue
                stem = "__".join(path.relative_to(inputs[domain]).with_suffix("").parts)
                names = [f"{stem}_{index:03d}.npy" for index in range(len(chunks))]
                for name, chunk in zip(names, chunks):
                    _save_npy(staging[domain] / name, chunk)
                chunked[domain][path] = names
        for domain in inputs:
            songs = sorted(chunked[domain])
            if not songs:
                raise ValueError(f"no chunks for {domain}: none of the {len(files[domain])} files in "
                                 f"{inputs[domain]} is a readable song of at least {rep.chunk_seconds:.2f} s")
        for domain in inputs:
            songs = sorted(chunked[domain])
            random.Random(seed).shuffle(songs)
            n_val = min(len(songs) - 1, max(1, round(val_fraction * len(songs)))) if val_fraction > 0 else 0
            if n_val == 0 and val_fraction > 0:
                tqdm.write(f"warning: only one {domain} song: no validation song held out")
            for split, split_songs in (("val", sorted(songs[:n_val])), ("train", sorted(songs[n_val:]))):
                folder = staging[domain] / split
                folder.mkdir()
                for song in split_songs:
                    for name in chunked[domain][song]:
                        (staging[domain] / name).rename(folder / name)
                summary[domain][f"{split}_chunks"] = sum(len(chunked[domain][song]) for song in split_songs)
                write_listing(folder, rep, {str(song.resolve()): len(chunked[domain][song]) for song in split_songs})
        for domain in inputs:
            for split in ("train", "val"):
                _replace_folder(staging[domain] / split, Path(output) / f"{domain}_{split}")
    finally:
        for folder in staging.values():
            shutil.rmtree(folder, ignore_errors=True)
    return summary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pop", type=Path, default=Path("data/pop"), help="folder of pop songs, searched "
                        "recursively (default: data/pop)")
    parser.add_argument("--jazz", type=Path, default=Path("data/jazz"), help="folder of jazz songs (default: "
                        "data/jazz)")
    parser.add_argument("--output", type=Path, default=Path("data"), help="where <domain>_train/ and <domain>_val/ "
                        "go (default: data)")
    parser.add_argument("--chunk-seconds", type=float, default=6.0, help="chunk length in seconds, rounded down to "
                        "a multiple of 64 frames of 256 samples (default: 6.0 -> 512 frames = 5.94 s)")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="fraction of songs per domain held out "
                        "for validation, at least one when there are two or more (default: 0.1)")
    parser.add_argument("--workers", type=int, default=max(1, __import__("os").cpu_count() or 1),
                        help="parallel processes (default: one per CPU core)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the validation split (default: 0)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        rep = Representation(chunk_frames=chunk_frames_for_seconds(args.chunk_seconds))
        summary = preprocess({"pop": args.pop, "jazz": args.jazz}, args.output, rep, args.val_fraction,
                             args.workers, args.seed)
    except (FileNotFoundError, FileExistsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - start
    seconds = sum(entry["seconds"] for entry in summary.values())
    print(f"\n{'domain':<6} {'read':>5} {'skipped':>8} {'short':>6} {'train':>6} {'val':>5} chunks   audio")
    for domain, entry in summary.items():
        print(f"{domain:<6} {entry['files_read']:>5} {entry['files_skipped']:>8} {entry['too_short']:>6} "
              f"{entry['train_chunks']:>6} {entry['val_chunks']:>5}          {entry['seconds'] / 60:.1f} min")
    print(f"{seconds:.0f} s of audio in {elapsed:.1f} s ({seconds / elapsed:.0f}x real time) -> {args.output}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
