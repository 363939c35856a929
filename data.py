"""The dataset on disk: folders of songs going in, folders of spectrogram chunks coming out, and their listings.

audio_preprocessing.py writes, for each domain and split, a folder of float16 .npy chunks [n_bins, chunk_frames]
named <song>_<index>.npy and a `representation.json` (the listing) with the spectrogram parameters and the
source songs with their chunk counts. Everything that reads such a folder goes through this module, so the
listing has one reader and one writer.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from outputs import atomic_write_bytes
from spectrogram import AUDIO_EXTENSIONS, Representation, audio_to_image, load_audio, split_chunks

LISTING = "representation.json"  # in every chunk folder: {"representation": {...}, "songs": {path: chunks}}


class DataError(ValueError):
    """A dataset folder or chunk that cannot be used; the message names it and says what to run."""


def write_listing(folder: Path, rep: Representation, songs: dict[str, int]) -> None:
    """Write `folder`/representation.json atomically: the representation and {source song path: chunk count}."""
    text = json.dumps({"representation": rep.to_dict(), "songs": songs}, indent=2)
    atomic_write_bytes(Path(folder) / LISTING, text.encode())


def read_listing(folder: Path) -> tuple[Representation, dict[Path, int]]:
    """(representation, {source song: chunk count}) of a chunk folder.

    Raises DataError naming the file, and saying to run audio_preprocessing.py, when it is missing or not a
    valid listing.
    """
    path = Path(folder) / LISTING
    if not path.is_file():
        raise DataError(f"{path} not found: run `uv run audio_preprocessing.py` to make the dataset (or pass --data)")
    try:
        saved = json.loads(path.read_text())
        return Representation.from_dict(saved["representation"]), {Path(song): int(count) for song, count
                                                                     in saved.get("songs", {}).items()}
    except (KeyError, ValueError, TypeError, AttributeError) as error:
        raise DataError(f"{path}: not a valid representation file ({error}); run audio_preprocessing.py again") \
            from error


def listed_songs(folder: Path, instead: str = "the songs to use") -> list[Path]:
    """The source songs listed in a chunk folder, all present. Raises DataError saying what to run, or to pass
    `instead`, when the listing is missing, lists no song or a listed song has moved."""
    listing = Path(folder) / LISTING
    if not listing.is_file():
        raise DataError(f"{listing} not found: run `uv run audio_preprocessing.py`, or pass --data or {instead}")
    songs = list(read_listing(folder)[1])
    if not songs:
        raise DataError(f"{listing} lists no songs: preprocess at least 2 songs per domain so one is held out, or "
                        f"pass {instead}")
    missing = [str(song) for song in songs if not song.is_file()]
    if missing:
        raise DataError(f"songs listed in {listing} are missing: {', '.join(missing)}; pass {instead}, or run "
                        f"audio_preprocessing.py again")
    return songs


def song_of_chunk(path: Path) -> str:
    """The song a chunk file came from: 'pop.00001_002.npy' -> 'pop.00001'."""
    return Path(path).stem.rsplit("_", 1)[0]


def find_audio_files(folder: Path) -> list[Path]:
    """Audio files below `folder`, recursively, sorted by name (by their extension: wav, flac, ogg, mp3, au, ...).

    Raises FileNotFoundError naming the folder when it is missing or holds no audio file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} does not exist: put your songs there (e.g. the GTZAN genre folder) "
                                f"or pass another folder")
    files = sorted(path for path in folder.rglob("*") if path.is_file()
                   and path.suffix.lower() in AUDIO_EXTENSIONS)
    if not files:
        raise FileNotFoundError(f"{folder} holds no audio files ({', '.join(AUDIO_EXTENSIONS)}): put your songs there")
    return files


def song_chunks(path: Path, rep: Representation) -> torch.Tensor:
    """The chunk images [n, n_bins, chunk_frames] of a song file, cut as audio_preprocessing.py cuts them (the
    tail shorter than a chunk dropped). Raises AudioError as spectrogram.load_audio does."""
    return split_chunks(audio_to_image(load_audio(path, rep.sample_rate), rep), rep)


class ChunkFolder:
    """The .npy chunks of one folder made by audio_preprocessing.py, memory-mapped: item i -> [n_bins, frames].

    `representation` and `songs` come from its listing. Raises DataError naming the folder when it or its
    listing is missing or it holds no chunk, or naming the file when a chunk is unreadable, has the wrong shape
    or (when read) a non-finite value.
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise DataError(f"{self.folder} does not exist: run `uv run audio_preprocessing.py` first "
                            f"(or pass --data)")
        self.representation, songs = read_listing(self.folder)
        self.songs = list(songs)
        self.files = sorted(self.folder.glob("*.npy"))
        if not self.files:
            raise DataError(f"{self.folder} holds no .npy chunks: run `uv run audio_preprocessing.py`")
        self.shape = (self.representation.n_bins, self.representation.chunk_frames)
        for path in self.files:  # headers only: a wrong or unreadable chunk fails here, not hours into training
            self._open(path)

    def _open(self, path: Path) -> np.ndarray:
        try:
            chunk = np.load(path, mmap_mode="r")
        except (ValueError, OSError) as error:
            raise DataError(f"{path}: not a readable .npy chunk ({error}); run audio_preprocessing.py again")
        if chunk.shape != self.shape:
            raise DataError(f"{path}: shape {chunk.shape}, expected {self.shape}; run audio_preprocessing.py again")
        return chunk

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> np.ndarray:
        path = self.files[index]
        chunk = np.asarray(self._open(path), dtype=np.float32)
        if not np.isfinite(chunk).all() or np.abs(chunk).max() > 1.0:
            raise DataError(f"{path}: holds NaN, inf or values outside [-1, 1]; run audio_preprocessing.py again")
        return chunk


class UnpairedChunks(Dataset):
    """Pairs (pop chunk i, a jazz chunk drawn by a seeded per-epoch permutation): ([1, H, W], [1, H, W]).

    One epoch visits every chunk of the larger domain once.
    """

    def __init__(self, folder_a: ChunkFolder, folder_b: ChunkFolder, seed: int):
        self.a, self.b, self.seed = folder_a, folder_b, seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        generator = torch.Generator().manual_seed(self.seed * 100003 + epoch)
        self.order_a = torch.randperm(len(self.a), generator=generator).tolist()
        self.order_b = torch.randperm(len(self.b), generator=generator).tolist()

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def __getitem__(self, index: int):
        chunk_a = self.a[self.order_a[index % len(self.a)]]
        chunk_b = self.b[self.order_b[index % len(self.b)]]
        return torch.from_numpy(chunk_a)[None], torch.from_numpy(chunk_b)[None]
