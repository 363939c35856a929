"""The dataset on disk: folders of songs going in, folders of spectrogram chunks coming out, and their listings.

audio_preprocessing.py writes, for each domain and split, a folder of float16 .npy chunks [n_bins, chunk_frames]
named <song>_<index>.npy and a `representation.json` (the listing) with the spectrogram parameters and the
source songs with their chunk counts. Everything that reads such a folder goes through this module, so the
listing has one reader and one writer.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from pop2jazz.audio_files import AUDIO_EXTENSIONS
from pop2jazz.errors import MissingFileError, UserError
from pop2jazz.output_files import atomic_write_bytes
from pop2jazz.spectrogram import Representation, audio_to_image, load_audio, split_chunks

LISTING = "representation.json"  # in every chunk folder: {"representation": {...}, "songs": {path: chunks}}
# CC BY 3.0, see examples/README.md
EXAMPLE_SONG = Path(__file__).resolve().parent.parent / "examples" / "lets_go_fishin_excerpt.ogg"
# bytes of a chunk file name's song part: with '_NNN.npy' and the '.<name>.XXXXXXXX.tmp' of its atomic write
# hashed when long (output_files.temporary_beside), well within the 255 bytes of a file name
MAX_STEM_BYTES = 200
CLIPS_VARIABLE = "POP2JAZZ_CLIPS"  # a folder with pop/ and jazz/ songs for the real-audio tests and the benchmarks


class DataError(UserError, ValueError):
    """A dataset folder or chunk that cannot be used; the message names it and says what to run."""


def write_listing(folder: Path, rep: Representation, songs: dict[str, int]) -> None:
    """Write `folder`/representation.json atomically: the representation and {source song path: chunk count}."""
    text = json.dumps({"representation": rep.to_dict(), "songs": songs}, indent=2)
    atomic_write_bytes(Path(folder) / LISTING, text.encode())


def read_listing(folder: Path) -> tuple[Representation, dict[Path, int]]:
    """(representation, {source song: chunk count}) of a chunk folder.

    Raises DataError naming the file, and saying to run audio_preprocessing.py, when it is missing or not a
    valid listing; when `folder` is a dataset's root instead, naming its chunk folders to pass.
    """
    path = Path(folder) / LISTING
    if not path.is_file():
        inside = sorted(child for child in Path(folder).iterdir() if (child / LISTING).is_file()) \
            if Path(folder).is_dir() else []
        if inside:  # a dataset's root where one of its chunk folders was meant
            raise DataError(f"{folder} is a whole dataset, not one chunk folder: pass --data {inside[0]} (or another "
                            f"of {', '.join(child.name for child in inside[1:])})")
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


def example_clips() -> Path:
    """The folder of real pop/ and jazz/ clips the tests and benchmarks use: $POP2JAZZ_CLIPS, else the GTZAN
    excerpts in ../shared/audio/gtzan_mini beside the checkout."""
    default = Path(__file__).resolve().parent.parent.parent / "shared" / "audio" / "gtzan_mini"
    return Path(os.environ.get(CLIPS_VARIABLE) or default)


@dataclasses.dataclass
class FolderScan:
    """What `scan_folder` found: `audio` (files with an extension of audio libsndfile or ffmpeg reads, each real
    file once, sorted by path), `other` (every other file, and links that lead nowhere) and `repeated_folders`
    (links to a folder searched already: a loop, such as a link to its own parent, or a second way into one
    folder)."""

    audio: list[Path]
    other: list[Path]
    repeated_folders: list[Path]

    def notes(self, folder: Path, verbose: bool = False) -> list[str]:
        """What a user should hear about the scan of `folder`: links to folders searched already, and the count
        of other files (their names when `verbose`)."""
        notes = [f"warning: {link} leads to a folder searched already (a link loop, or a second link to it): "
                 f"its songs are read once" for link in self.repeated_folders]
        if self.other:
            names = f": {', '.join(map(str, self.other))}" if verbose else " (-v names them)"
            notes.append(f"note: {len(self.other)} other file(s) in {folder} are not audio libsndfile or ffmpeg "
                         f"reads, skipped{names}")
        return notes


def scan_folder(folder: Path) -> FolderScan:
    """Every file below `folder`, following links to folders (Path.rglob does not before Python 3.13), each real
    folder and file once. Raises MissingFileError naming the folder when it is missing or holds no audio file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingFileError(f"{folder} does not exist: put your songs there (e.g. the GTZAN genre folder) "
                                f"or pass another folder")
    folders, files = {_identity(folder)}, set()
    audio, other, repeated = [], [], []
    for parent, subfolders, names in os.walk(folder, followlinks=True):
        searched = []
        for name in sorted(subfolders):
            key = _identity(os.path.join(parent, name))
            if key in folders:
                repeated.append(Path(parent, name))
            else:
                folders.add(key)
                searched.append(name)
        subfolders[:] = searched  # os.walk descends into these only
        for name in sorted(names):  # of two names of one file, the first in name order counts
            path = Path(parent, name)
            try:
                key = _identity(path)
            except OSError:  # a link to nothing
                other.append(path)
                continue
            if key not in files:
                files.add(key)
                (audio if path.suffix.lower() in AUDIO_EXTENSIONS else other).append(path)
    if not audio:
        found = f" (only {len(other)} other files, such as {other[0].name})" if other else ""
        raise MissingFileError(f"{folder} holds no audio files{found}: put your songs there in an audio format "
                                f"(wav, flac, ogg, mp3, m4a, opus, aiff, ...)")
    return FolderScan(sorted(audio), sorted(other), repeated)


def _identity(path: str | Path) -> tuple[int, int]:
    """(device, inode) of what `path` leads to, through links: one real file or folder, however it is reached."""
    status = os.stat(path)
    return status.st_dev, status.st_ino


def find_audio_files(folder: Path) -> list[Path]:
    """The audio files of `scan_folder(folder)`, sorted by path; raises MissingFileError as it does."""
    return scan_folder(folder).audio


def chunk_stems(songs: list[Path], root: Path) -> dict[Path, str]:
    """The name each song's chunk files start with: its path below `root` with the folders joined by '__'
    ('live/a.wav' -> 'live__a'). Songs whose names would clash, also by case alone (a case-insensitive disk),
    keep their extension and a hash of their path: 'song.wav' and 'song.flac' -> 'song.wav-3f2a1b9c' and
    'song.flac-90c2d4e1'; 'live/a.wav' and 'live__a.wav' likewise. A stem longer than MAX_STEM_BYTES (a song
    name near the file system's 255 bytes, or deep folders) is cut there and ends in the same hash, so every
    chunk file name fits."""
    flat = {song: "__".join(song.relative_to(root).with_suffix("").parts) for song in songs}
    count: dict[str, int] = {}
    for stem in flat.values():
        count[stem.lower()] = count.get(stem.lower(), 0) + 1
    stems = {song: stem if count[stem.lower()] == 1 else f"{stem}{song.suffix}-{_path_hash(song, root)}"
             for song, stem in flat.items()}
    return {song: stem if len(os.fsencode(stem)) <= MAX_STEM_BYTES else
            f"{_cut(stem, MAX_STEM_BYTES - 9)}-{_path_hash(song, root)}"
            for song, stem in stems.items()}


def _cut(text: str, size: int) -> str:
    """The longest start of `text` of at most `size` bytes on disk, never cutting a character in two."""
    text = text[:size]  # a character is at least a byte
    while len(os.fsencode(text)) > size:
        text = text[:-1]
    return text


def _path_hash(song: Path, root: Path) -> str:
    return hashlib.sha1(os.fsencode(song.relative_to(root))).hexdigest()[:8]


def cut_song(path: Path, rep: Representation) -> tuple[torch.Tensor, float]:
    """A song file cut into chunks, the one definition of chunking: (chunk images [n, n_bins, chunk_frames] in
    [-1, 1], the song's duration in seconds). The tail shorter than a chunk is dropped; n is 0 for a song shorter
    than one chunk. Raises AudioError as spectrogram.load_audio does."""
    audio = load_audio(path, rep.sample_rate)
    return split_chunks(audio_to_image(audio, rep), rep), len(audio) / rep.sample_rate


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


class SongWindows:
    """The songs of a ChunkFolder as one long image each, read as windows at any frame offset.

    A song's chunks (`song_of_chunk`, in file order) are consecutive stretches of its image, cut without overlap,
    so frames f .. f + chunk_frames of the song are read from at most two chunk files. `window(index, offset)`
    -> [n_bins, chunk_frames] float32; `frames[index]`: the frames of song `index`; `weights`: each song's share
    of all the frames.
    """

    def __init__(self, folder: ChunkFolder):
        self.folder = folder
        songs: dict[str, list[int]] = {}
        for index, path in enumerate(folder.files):
            songs.setdefault(song_of_chunk(path), []).append(index)
        self.chunks = list(songs.values())
        self.frames = [len(chunks) * folder.shape[1] for chunks in self.chunks]
        self.weights = np.array(self.frames, dtype=np.float64) / sum(self.frames)  # a song's chance to be drawn

    def window(self, index: int, offset: int) -> np.ndarray:
        length = self.folder.shape[1]
        first, within = divmod(offset, length)
        parts = [self.folder[self.chunks[index][first]][:, within:]]
        if within:
            parts.append(self.folder[self.chunks[index][first + 1]][:, :within])
        return np.concatenate(parts, axis=1)


class RandomWindows(UnpairedChunks):
    """Pairs (pop window, jazz window) of chunk_frames frames, each at a random frame offset in a random song of
    its domain: ([1, H, W], [1, H, W]), train.py --random-windows.

    Songs are drawn in proportion to their length, offsets uniformly, so every frame of the training songs is as
    likely to start a window; the bundled model's 14 training songs (36 chunks) give 11,278 distinct windows.
    An epoch has as many pairs as UnpairedChunks' (the steps stay comparable); pair i of an epoch is drawn
    from a generator seeded by (seed, epoch, i), so loader workers and resumed runs draw the same windows.
    """

    def __init__(self, folder_a: ChunkFolder, folder_b: ChunkFolder, seed: int):
        self.songs_a, self.songs_b = SongWindows(folder_a), SongWindows(folder_b)
        super().__init__(folder_a, folder_b, seed)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _draw(self, songs: SongWindows, rng: np.random.Generator) -> torch.Tensor:
        index = int(rng.choice(len(songs.frames), p=songs.weights))
        offset = int(rng.integers(0, songs.frames[index] - self.a.shape[1] + 1))
        return torch.from_numpy(songs.window(index, offset))[None]

    def __getitem__(self, index: int):
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return self._draw(self.songs_a, rng), self._draw(self.songs_b, rng)
