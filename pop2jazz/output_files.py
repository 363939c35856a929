"""Writing what the tools make without ever losing anything: atomic files, clear write errors, audio files that
never clip and say who made them.

A file appears under its name only once it is complete: it is written to a hidden temporary file in the same
folder, fsynced, then renamed over the name, so a crash, a full disk or Ctrl-C leaves the old file (or none).
A failed write (full disk, read-only mount, no permission) becomes an OutputError: one line naming the file, the
mount and, where known, the size it needed.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import functools
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from pop2jazz.audio_files import AUDIO_FORMATS, AudioError, soundfile_path
from pop2jazz.errors import UserError
from pop2jazz.spectrogram import SAMPLE_RATE

MADE_BY = "pop2jazz"  # the mark in the comment of every audio file the tools write


class OutputError(UserError, OSError):
    """An output that cannot be written; the message names the file (or folder), why, and what to do."""


class OutputFormatError(UserError, ValueError):
    """An output name whose extension is not an audio format the tools can write."""


def mount_point(path: Path) -> Path:
    """The mount point of the file system that holds (or would hold) `path`: what "no space left on" names."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    while not os.path.ismount(path):
        path = path.parent
    return path


def megabytes(size: int) -> str:
    """A size in bytes for a message: '2.6 MB'."""
    return f"{max(size, 0) / 2**20:.1f} MB"


def write_error(error: OSError, path: Path, size: int | None = None, how: str = "write elsewhere") -> OutputError:
    """The OutputError for `error` raised writing `path` (`size`: bytes it needs, when known; `how`: the way out
    the message offers)."""
    needs = f" (needs about {megabytes(size)})" if size else ""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return OutputError(f"no space left on {mount_point(path)} writing {path}{needs}: free some space there or "
                           f"{how}")
    if error.errno == errno.EROFS:
        return OutputError(f"{mount_point(path)} is read-only: cannot write {path}; {how}")
    if error.errno in (errno.EACCES, errno.EPERM):
        return OutputError(f"no permission to write {path}: make its folder writable or {how}")
    return OutputError(f"cannot write {path}: {error.strerror or error}; {how}")


@contextlib.contextmanager
def writing(path: Path, size: int | None = None, how: str = "write elsewhere") -> Iterator[None]:
    """Turn an OSError raised in the block, which writes `path`, into an OutputError naming it (see write_error)."""
    try:
        yield
    except OutputError:
        raise
    except OSError as error:
        raise write_error(error, Path(path), size, how) from error


def check_writable(folder: Path, size: int = 0, how: str = "write elsewhere") -> None:
    """Make sure `folder` can take the outputs of a long run before it starts: create it as needed, create and
    remove a temporary file there, and compare `size` (bytes, 0 when unknown) with the free space.

    Raises OutputError naming the folder, why, and `how` to fix it (e.g. "pass --checkpoint-dir elsewhere").
    """
    folder = Path(folder)
    with writing(folder, size, how):
        Path(temporary_beside(folder / ".write_test")).unlink()
    free = shutil.disk_usage(folder).free
    if size > free:
        raise OutputError(f"no space left on {mount_point(folder)} for {folder}: needs about {megabytes(size)}, "
                          f"{megabytes(free)} free; free some space there or {how}")


def temporary_beside(path: Path, suffix: str = ".tmp") -> str:
    """Create an empty hidden file '.<name>.XXXX<suffix>' in the folder of `path` (made as needed) and return its
    name. It gets the permissions a plain open() would give (tempfile.mkstemp alone gives 0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(name, 0o666 & ~umask)
    return name


class GuardedFile:
    """A binary file whose write never raises: the first OSError is kept in `error` and every write from then on
    writes nothing and returns 0. Writers that call back from C (libsndfile through soundfile, torch.save) turn an
    exception raised inside write into a traceback on stderr or an unrelated error ("unexpected pos"); the file
    that was being written then reports the real cause. Everything else is the wrapped file's."""

    def __init__(self, file):
        self.file, self.error = file, None

    def write(self, data) -> int:
        if self.error is not None:
            return 0
        try:
            return self.file.write(data)
        except OSError as error:
            self.error = error
            return 0

    def raise_error(self, path: Path, size: int | None = None) -> None:
        """Raise the OutputError for `path` when a write failed."""
        if self.error is not None:
            raise write_error(self.error, Path(path), size) from self.error

    def __getattr__(self, name):
        return getattr(self.file, name)


@contextlib.contextmanager
def _temporary(path: Path, suffix: str, size: int | None) -> Iterator[tuple[str, GuardedFile]]:
    """(name, GuardedFile) of a new temporary file beside `path`, removed when the block ends; a write that failed
    in the block raises OutputError for `path`."""
    with writing(path, size):
        temporary = temporary_beside(Path(path), suffix)
    try:
        with writing(path, size), open(temporary, "w+b") as file:
            guarded = GuardedFile(file)
            try:
                yield temporary, guarded
            finally:
                guarded.raise_error(path, size)
    finally:
        Path(temporary).unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_file(path: Path, size: int | None = None) -> Iterator[GuardedFile]:
    """Open a binary file that appears at `path` only when the block ends without error: written to a temporary
    file in the same folder, fsynced, then renamed over `path`. A crash at any point leaves the old file intact.

    Raises OutputError naming `path` (and `size`, the bytes it needs, when given) when it cannot be written.
    """
    with _temporary(path, ".tmp", size) as (temporary, file):
        yield file
        file.flush()
        if file.error is None:
            os.fsync(file.fileno())
            os.replace(temporary, path)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through `atomic_file`: never half-written."""
    with atomic_file(path, len(data)) as file:
        file.write(data)


def write_csv(path: Path, rows: list[dict], fields: list[str]) -> None:
    """`rows` as a CSV file with the columns `fields`, written atomically."""
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, text.getvalue().encode())


# audio files

@functools.lru_cache
def _can_write(form: str, subtype: str, sample_rate: int, channels: int = 1) -> bool:
    """Whether libsndfile writes `form` / `subtype` at `sample_rate` with `channels` and the provenance comment:
    tried in memory.
    Sound Designer II is not tried: off a Mac, libsndfile writes its resource fork to a '._' file beside it (for
    a file in memory, in the working folder), and it holds no text anyway."""
    if form == "SD2":
        return False
    try:
        with sf.SoundFile(io.BytesIO(), "w", sample_rate, channels, subtype, format=form) as file:
            file.comment = MADE_BY
            file.write(np.zeros((64, channels), np.float32))
        return True
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        return False


def _subtype(extension: str) -> str:
    form = AUDIO_FORMATS[extension]
    if extension == "opus":  # Ogg holds Vorbis unless the name says Opus
        return "OPUS"
    return "PCM_16" if sf.check_format(form, "PCM_16") else sf.default_subtype(form)


def writable_extensions(sample_rate: int = SAMPLE_RATE, channels: int = 1) -> list[str]:
    """Extensions (no dot) of the audio formats the tools can write at `sample_rate` with `channels`, provenance
    included."""
    return [extension for extension, form in AUDIO_FORMATS.items()
            if _can_write(form, _subtype(extension), sample_rate, channels)]


def channels_suffix(channels: int) -> str:
    """How a message names a channel count after the rate or format: '' for mono (the tools' default), ' stereo',
    ' 6 channels'."""
    return {1: "", 2: " stereo"}.get(channels, f" {channels} channels")


def audio_format(path: Path, sample_rate: int = SAMPLE_RATE, channels: int = 1) -> tuple[str, str]:
    """(libsndfile format, subtype) that `path`'s extension asks for: 16-bit PCM where the format has it, else its
    default (Vorbis for .ogg, MPEG layer III for .mp3).

    Raises OutputFormatError naming the path and the extensions that work when libsndfile cannot write it at
    `sample_rate` Hz with `channels` (MP3 stops at 48 kHz and 2 channels) or cannot store the provenance comment
    in it (au, w64 and most others hold no text).
    """
    extension = Path(path).suffix.lower().removeprefix(".")
    form = AUDIO_FORMATS.get(extension)
    if form is None or not _can_write(form, _subtype(extension), sample_rate, channels):
        raise OutputFormatError(f"{path}: cannot write .{extension or '(no extension)'}{channels_suffix(channels)} "
                                f"audio at {sample_rate} Hz; use one of "
                                f".{', .'.join(writable_extensions(sample_rate, channels))}")
    return form, _subtype(extension)


def audio_bytes(samples: int) -> int:
    """About the bytes `write_audio_blocks` needs for `samples` samples (all channels together): the 16-bit file
    (an upper bound for the compressed formats) and the float32 copy it keeps meanwhile."""
    return samples * (4 + 2) + 4096


def provenance_of(path: Path) -> dict | None:
    """The provenance `write_audio` stamped into an audio file ({"tool", "direction", "checkpoint", "input", ...}),
    or None when the file is not one of ours (or cannot be read)."""
    try:
        with sf.SoundFile(soundfile_path(path)) as file:
            saved = json.loads(file.comment or "null")
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, OSError):
        return None
    return saved if isinstance(saved, dict) and saved.get("made_by") == MADE_BY else None


def write_audio(path: Path, audio: np.ndarray | torch.Tensor, sample_rate: int, provenance: dict,
                peak: float = 0.99) -> float:
    """Write mono float audio [samples] to `path`, atomically, never clipping, in the format of its extension.

    If the peak exceeds `peak` (full scale = 1.0) the whole signal is scaled down to it. `provenance` (plain
    values: which tool, checkpoint, input ...) goes into the file's comment as JSON, with the software field, so
    `provenance_of` knows it for ours. Returns the gain applied (1.0 when none). Raises AudioError if the audio
    holds NaN or inf, OutputFormatError / OutputError as `write_audio_blocks` does.
    """
    audio = torch.as_tensor(audio).detach().cpu().numpy()
    return write_audio_blocks(path, [audio], sample_rate, provenance, peak, size=audio_bytes(len(audio)))


def write_audio_blocks(path: Path, blocks: Iterable[np.ndarray], sample_rate: int, provenance: dict,
                       peak: float = 0.99, block_samples: int = 1 << 18, size: int | None = None,
                       channels: int = 1) -> float:
    """`write_audio` for audio that arrives in blocks ([samples] each; [samples, channels] when `channels` > 1),
    never holding the whole signal. The peak is the loudest sample of any channel.

    The gain is known only after the last block, so the blocks go to a float32 temporary file first and a
    second pass writes the scaled file (16-bit PCM, or the format's own coding), renamed into place; a failure
    leaves no file behind. `size`: bytes needed, for the message when the disk is full. Returns the gain
    applied; raises AudioError, naming `path`, at the first block with NaN or inf, OutputFormatError for an
    extension it cannot write and OutputError when the file cannot be written.
    """
    path = Path(path)
    form, subtype = audio_format(path, sample_rate, channels)
    with atomic_file(path, size) as target, _temporary(path, ".f32", size) as (_, floats):
        loudest = 0.0
        for block in blocks:
            block = np.asarray(block, dtype=np.float32)
            if not np.isfinite(block).all():
                raise AudioError(f"{path}: refusing to write audio with NaN or infinite samples")
            loudest = max(loudest, float(np.abs(block).max()) if block.size else 0.0)
            floats.write(block.tobytes())
            floats.raise_error(path, size)  # a full disk stops the conversion at once, not at its end
        gain = (peak - 2.0**-15) / loudest if loudest > peak else 1.0  # room for 16-bit rounding
        floats.seek(0)
        with sf.SoundFile(target, "w", sample_rate, channels, subtype, format=form) as sound:
            sound.comment = json.dumps({"made_by": MADE_BY, **provenance}, sort_keys=True)  # ASCII: any name fits
            sound.software = f"{MADE_BY} {provenance.get('tool', '')}".strip()
            while target.error is None and (data := floats.read(4 * channels * block_samples)):
                samples = np.frombuffer(data, np.float32)
                sound.write((samples if channels == 1 else samples.reshape(-1, channels)) * gain)
    return gain
