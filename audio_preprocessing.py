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
import io
import os
import random
import shutil
import signal
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from audio_files import AudioError
from data import LISTING, chunk_stems, scan_folder, write_listing
from outputs import atomic_write_bytes, check_writable, provenance_of, writing
from runtime import TERMINATION_SIGNALS, run_command
from spectrogram import (Representation, audio_samples, audio_to_image, chunk_frames_for_seconds, load_audio,
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
    # the main process alone handles interruptions: it cancels the queue and removes what was staged
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for number in TERMINATION_SIGNALS:
        signal.signal(number, signal.SIG_DFL)


def _save_npy(path: Path, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array)
    atomic_write_bytes(path, buffer.getvalue())


def _check_replaceable(output: Path, domains) -> None:
    """Raise FileExistsError, before any work, when a chunk folder to write exists and this script did not make it."""
    for domain in domains:
        for split in ("train", "val"):
            final = Path(output) / f"{domain}_{split}"
            if final.exists() and not (final / LISTING).is_file():
                raise FileExistsError(f"{final} exists and was not made by audio_preprocessing.py: move it away or "
                                      f"pass another --output")


def _replace_folder(staging: Path, final: Path) -> None:
    """Move `staging` to `final`, replacing a folder this script made earlier (see _check_replaceable)."""
    if final.exists():
        shutil.rmtree(final)
    staging.rename(final)


def chunk_set_bytes(songs: list[Path], rep: Representation) -> int:
    """About the bytes of the .npy chunks of `songs` (from their headers; unreadable ones count nothing)."""
    chunks = sum((1 + audio_samples(song, rep.sample_rate) // rep.hop_length) // rep.chunk_frames for song in songs)
    return chunks * (rep.n_bins * rep.chunk_frames * np.dtype(np.float16).itemsize + 128)


def songs_of(domain: str, folder: Path, entry: dict, verbose: bool) -> list[Path]:
    """The songs of `folder` to chunk: its audio files (scan_folder) less the ones the tools wrote themselves.
    Warns about those and about links to folders searched already; counts the other files in `entry`, naming
    them when `verbose`."""
    scan = scan_folder(folder)
    for note in scan.notes(folder, verbose):
        tqdm.write(note)
    ours = [path for path in scan.audio if provenance_of(path) is not None]
    if ours:
        tqdm.write(f"warning: {len(ours)} {domain} file(s) were written by pop2jazz itself (convert.py outputs, "
                   f"samples): skipped, so the model never trains on its own output: {', '.join(map(str, ours))}")
    entry.update(own_outputs=len(ours), other_files=len(scan.other))
    return [path for path in scan.audio if path not in ours]


def chunk_songs(files: dict[str, list[Path]], stems: dict[Path, str], staging: dict[str, Path], rep: Representation,
                workers: int, summary: dict) -> dict[str, dict[Path, list[str]]]:
    """Chunk the songs of each domain in `workers` processes into staging[domain], counting in `summary`: {domain:
    {song: its chunk file names}}. Unreadable and too short songs are skipped with a line naming them."""
    chunked: dict[str, dict[Path, list[str]]] = {domain: {} for domain in files}
    domain_of = {path: domain for domain, songs in files.items() for path in songs}
    pool = ProcessPoolExecutor(max(1, workers), initializer=_init_worker)
    try:
        results = pool.map(_worker, [(path, rep) for path in domain_of], chunksize=1)
        for path, chunks, seconds, notes, error in tqdm(results, total=len(domain_of), desc="chunking", unit="song"):
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
                tqdm.write(f"skipped: {path}: {seconds:.2f} s is shorter than one chunk ({rep.chunk_seconds:.2f} s)")
                entry["too_short"] += 1
                continue
            names = [f"{stems[path]}_{index:03d}.npy" for index in range(len(chunks))]
            for name, chunk in zip(names, chunks):
                _save_npy(staging[domain] / name, chunk)
            chunked[domain][path] = names
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # on Ctrl-C: finish the songs under way, start no other
    return chunked


def preprocess(inputs: dict[str, Path], output: Path, rep: Representation, val_fraction: float = 0.1,
               workers: int = 2, seed: int = 0, verbose: bool = False) -> dict:
    """Chunk every song of each domain into `output`/<domain>_train and `output`/<domain>_val.

    Returns a summary {domain: {"files_read", "files_skipped", "too_short", "own_outputs", "other_files",
    "train_chunks", "val_chunks", "seconds"}}. Unreadable files are skipped with a warning naming them, files the
    tools wrote with one warning naming them all (see `songs_of`). Chunks are named after the song's path
    (data.chunk_stems: two songs never share a name). Raises FileNotFoundError when an input folder is missing or
    empty, ValueError when a domain yields no chunk, OutputError when `output` cannot take the chunks (checked
    before any work); nothing is written then.
    """
    summary = {domain: {"files_read": 0, "files_skipped": 0, "too_short": 0, "train_chunks": 0, "val_chunks": 0,
                        "seconds": 0.0} for domain in inputs}
    files = {domain: songs_of(domain, folder, summary[domain], verbose) for domain, folder in inputs.items()}
    for domain, songs in files.items():
        if not songs:
            raise ValueError(f"no songs for {domain}: every audio file in {inputs[domain]} was written by pop2jazz "
                             f"itself; put the original songs there")
    _check_replaceable(output, inputs)
    check_writable(output, chunk_set_bytes([song for songs in files.values() for song in songs], rep),
                   "pass --output with a writable place")
    stems = {path: stem for domain in inputs for path, stem in chunk_stems(files[domain], inputs[domain]).items()}
    staging = {domain: Path(output) / f".{domain}_staging" for domain in inputs}
    try:
        with writing(output):
            _stage(files, stems, staging, rep, val_fraction, workers, seed, summary)
            for domain in inputs:
                for split in ("train", "val"):
                    _replace_folder(staging[domain] / split, Path(output) / f"{domain}_{split}")
    finally:
        for folder in staging.values():
            shutil.rmtree(folder, ignore_errors=True)
    return summary


def _stage(files: dict[str, list[Path]], stems: dict[Path, str], staging: dict[str, Path], rep: Representation,
           val_fraction: float, workers: int, seed: int, summary: dict) -> None:
    """Chunk every song into staging[domain], then split its songs into staging[domain]/{train,val} with their
    listings (see preprocess). Raises ValueError when a domain yields no chunk."""
    for folder in staging.values():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
    chunked = chunk_songs(files, stems, staging, rep, workers, summary)
    for domain in files:
        if not chunked[domain]:
            raise ValueError(f"no chunks for {domain}: none of the {len(files[domain])} files there is a "
                             f"readable song of at least {rep.chunk_seconds:.2f} s")
    for domain in files:
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
    parser.add_argument("--workers", type=int, default=max(1, os.cpu_count() or 1),
                        help="parallel processes (default: one per CPU core)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the validation split (default: 0)")
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
    return run_command(run, parse_args(argv), (FileNotFoundError, FileExistsError, ValueError),
                       interrupted="the earlier chunk folders are as they were")


if __name__ == "__main__":
    sys.exit(main())
