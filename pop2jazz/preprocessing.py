"""The work of audio_preprocessing.py: song folders in, chunk folders out, one process per core.

preprocess() reads every song of each domain (dataset.scan_folder), cuts it (dataset.cut_song), stages the chunks
in a folder of this run's own beside the output and only then moves them into <domain>_train/ and <domain>_val/,
each with its representation.json. It holds the output folder's lock meanwhile (output_files.output_lock): a
second run into the same folder stops at once instead of mixing its chunks in. Whole songs, not chunks, are held
out for validation.
"""

from __future__ import annotations

import io
import random
import shutil
import signal
import tempfile
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from pop2jazz.audio_files import AudioError
from pop2jazz.commands import TERMINATION_SIGNALS
from pop2jazz.dataset import LISTING, chunk_stems, cut_song, scan_folder, write_listing
from pop2jazz.errors import InputError, WouldOverwriteError
from pop2jazz.output_files import atomic_write_bytes, check_writable, output_lock, provenance_of, writing
from pop2jazz.spectrogram import Representation, audio_samples


def _worker(job: tuple[Path, Representation]) -> tuple[Path, np.ndarray | None, float, list[str], str | None]:
    path, rep = job
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            chunks, seconds = cut_song(path, rep)
        return path, chunks.numpy().astype(np.float16), seconds, [str(warning.message) for warning in caught], None
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
                raise WouldOverwriteError(f"{final} exists and was not made by audio_preprocessing.py: move it away or "
                                      f"pass another --output")


def _replace_folder(staging: Path, final: Path) -> None:
    """Move `staging` to `final`, replacing a folder this script made earlier (see _check_replaceable).

    Both steps are renames, and the old folder is deleted only once it is out of the way: another run's
    _check_replaceable, which looks before it asks for the lock, sees at `final` either a whole folder with its
    listing or nothing, never one half deleted (which it would take for a folder not made here)."""
    if final.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{final.name}_replaced.", dir=final.parent))
        final.rename(retired / final.name)
        staging.rename(final)
        shutil.rmtree(retired, ignore_errors=True)
    else:
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


def write_song_chunks(files: dict[str, list[Path]], stems: dict[Path, str], staging: dict[str, Path],
                      rep: Representation, workers: int, summary: dict) -> dict[str, dict[Path, list[str]]]:
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
    (dataset.chunk_stems: two songs never share a name). Raises MissingFileError when an input folder is missing or
    empty, ValueError when a domain yields no chunk, OutputError when `output` cannot take the chunks (checked
    before any work); nothing is written then.
    """
    summary = {domain: {"files_read": 0, "files_skipped": 0, "too_short": 0, "train_chunks": 0, "val_chunks": 0,
                        "seconds": 0.0} for domain in inputs}
    files = {domain: songs_of(domain, folder, summary[domain], verbose) for domain, folder in inputs.items()}
    for domain, songs in files.items():
        if not songs:
            raise InputError(f"no songs for {domain}: every audio file in {inputs[domain]} was written by pop2jazz "
                             f"itself; put the original songs there")
    _check_replaceable(output, inputs)
    check_writable(output, chunk_set_bytes([song for songs in files.values() for song in songs], rep),
                   "pass --output with a writable place")
    stems = {path: stem for domain in inputs for path, stem in chunk_stems(files[domain], inputs[domain]).items()}
    with output_lock(output, "audio_preprocessing.py"):  # a second run into `output` stops here, at once
        _check_replaceable(output, inputs)  # again: a run that held the lock may have written meanwhile
        staging = {}
        try:
            with writing(output):
                for domain in inputs:  # this run's own staging folders, never another run's
                    staging[domain] = Path(tempfile.mkdtemp(prefix=f".{domain}_staging.", dir=output))
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
    listings (see preprocess). Raises InputError when a domain yields no chunk."""
    chunked = write_song_chunks(files, stems, staging, rep, workers, summary)
    for domain in files:
        if not chunked[domain]:
            raise InputError(f"no chunks for {domain}: none of the {len(files[domain])} files there is a "
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
