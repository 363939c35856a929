"""Writing what the tools make without ever losing anything: atomic files, clear write errors, audio files that
never clip and say who made them.

A file appears under its name only once it is complete: it is written to a hidden temporary file in the same
folder, fsynced, then renamed over the name, so a crash, a full disk or Ctrl-C leaves the old file (or none).
A failed write (full disk, read-only mount, no permission) becomes an OutputError: one line naming the file, the
mount and, where known, the size it needed.
"""

from __future__ import annotations

import contextlib
import ctypes
import csv
import errno
import functools
import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from pop2jazz.audio_files import AUDIO_FORMATS, AudioError, soundfile_path
from pop2jazz.errors import UserError, WouldOverwriteError
from pop2jazz.spectrogram import SAMPLE_RATE

MADE_BY = "pop2jazz"  # the mark in the comment of every audio file the tools write


class OutputError(UserError, OSError):
    """An output that cannot be written; the message names the file (or folder), why, and what to do."""


class OutputBusyError(OutputError):
    """An output folder another process of the tools is writing now (see output_lock)."""


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
    except UserError:  # said already (OutputError; WouldOverwriteError, which is an OSError too)
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


NAME_MAX = 255  # bytes in a file name where the system does not say (Linux, macOS and Windows file systems alike)
RANDOM_PART = 8  # characters tempfile.mkstemp adds to a name


def name_max(folder: Path) -> int:
    """The longest file name, in bytes, that `folder` (or the nearest folder above it that exists) can hold."""
    folder = Path(os.path.abspath(folder))
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):
        return NAME_MAX


def name_bytes(name: str) -> int:
    """The length of a file name on disk, in bytes (a UTF-8 'é' is 2)."""
    return len(os.fsencode(name))


def name_too_long(path: Path) -> str | None:
    """None when the file name of `path` fits its folder's limit (name_max); else why not, for a message: 'its name
    is 260 bytes, more than the 255 a file name can have there'."""
    size, limit = name_bytes(Path(path).name), name_max(Path(path).parent)
    return None if size <= limit else f"its name is {size} bytes, more than the {limit} a file name can have there"


LOCK_FILE = ".pop2jazz.lock"  # in a folder a tool writes as a whole: held (flock) while it does


@contextlib.contextmanager
def output_lock(folder: Path, tool: str, how: str = "wait for it to finish, or pass another --output"
                ) -> Iterator[None]:
    """Hold the lock of `folder` (made as needed) for the block: a second process asking for it meanwhile gets
    OutputBusyError, "FOLDER is being written by another TOOL", at once, so that two runs never mix or delete
    each other's files. The lock is an flock on the empty file LOCK_FILE there, released when the block ends or
    the process dies; where flock does not exist (Windows), nothing is locked."""
    folder = Path(folder)
    with writing(folder, how=how):
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(folder / LOCK_FILE, "a+b")
    try:
        try:
            import fcntl
        except ImportError:
            fcntl = None
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise OutputBusyError(f"{folder} is being written by another {tool}: {how}") from None
        yield
    finally:
        handle.close()


def temporary_beside(path: Path, suffix: str = ".tmp") -> str:
    """Create an empty hidden file '.<name>.XXXX<suffix>' in the folder of `path` (made as needed) and return its
    name; where that would be longer than a file name can be, '.<hash of name>.XXXX<suffix>', so a name that fits
    always has a temporary file. It gets the permissions a plain open() would give (tempfile.mkstemp alone gives
    0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}."
    if name_bytes(prefix + suffix) + RANDOM_PART > name_max(path.parent):
        prefix = f".{hashlib.sha1(os.fsencode(path.name)).hexdigest()[:16]}."
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=suffix)
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


def written_meanwhile(path: Path) -> WouldOverwriteError:
    """The error of a no-replace write whose file another process wrote after this one checked it was free."""
    return WouldOverwriteError(f"{path} was written by another run meanwhile; pass --overwrite to replace it")


def _renameat2_noreplace() -> Callable[[str, str], None] | None:
    """Linux's renameat2(..., RENAME_NOREPLACE) through ctypes, or None where the C library lacks it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.renameat2
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]

    def rename(source: str, target: str) -> None:
        at_cwd, no_replace = -100, 1  # AT_FDCWD, RENAME_NOREPLACE (linux/fs.h)
        if call(at_cwd, os.fsencode(source), at_cwd, os.fsencode(target), no_replace) != 0:
            number = ctypes.get_errno()
            raise OSError(number, os.strerror(number), target)
    return rename


def place_new(temporary: str, path: Path) -> None:
    """Give the complete file `temporary` the name `path` only if no file has it, in one step no other process can
    come between: a hard link (which fails when the name exists), else renameat2 with RENAME_NOREPLACE, else (a
    file system with neither) a check just before the rename. Raises WouldOverwriteError (written_meanwhile)
    when `path` exists; `temporary` is left for its owner to remove."""
    try:
        os.link(temporary, path)
        return
    except FileExistsError:
        raise written_meanwhile(path) from None
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK,
                               errno.ENOSYS):
            raise
    rename = _renameat2_noreplace() if os.name == "posix" else None
    if rename is not None:
        try:
            rename(temporary, str(path))
            return
        except FileExistsError:
            raise written_meanwhile(path) from None
        except OSError as error:
            if error.errno not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
    if os.path.lexists(path):
        raise written_meanwhile(path)
    os.rename(temporary, path)


@contextlib.contextmanager
def atomic_file(path: Path, size: int | None = None, replace: bool = True) -> Iterator[GuardedFile]:
    """Open a binary file that appears at `path` only when the block ends without error: written to a temporary
    file in the same folder, fsynced, then renamed over `path`. A crash at any point leaves the old file intact.
    With `replace` False (the caller was not asked to overwrite), a file that appeared at `path` meanwhile is
    never replaced (see place_new).

    Raises OutputError naming `path` (and `size`, the bytes it needs, when given) when it cannot be written,
    WouldOverwriteError when `replace` is False and another process wrote `path` first.
    """
    with _temporary(path, ".tmp", size) as (temporary, file):
        yield file
        file.flush()
        if file.error is None:
            os.fsync(file.fileno())
            if replace:
                os.replace(temporary, path)
            else:
                place_new(temporary, Path(path))


def atomic_write_bytes(path: Path, data: bytes, replace: bool = True) -> None:
    """Write `data` to `path` through `atomic_file` (with `replace`): never half-written."""
    with atomic_file(path, len(data), replace) as file:
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
                peak: float = 0.99, replace: bool = True) -> float:
    """Write mono float audio [samples] to `path`, atomically, never clipping, in the format of its extension.

    If the peak exceeds `peak` (full scale = 1.0) the whole signal is scaled down to it. `provenance` (plain
    values: which tool, checkpoint, input ...) goes into the file's comment as JSON, with the software field, so
    `provenance_of` knows it for ours. Returns the gain applied (1.0 when none). Raises AudioError if the audio
    holds NaN or inf, OutputFormatError / OutputError as `write_audio_blocks` does.
    """
    audio = torch.as_tensor(audio).detach().cpu().numpy()
    return write_audio_blocks(path, [audio], sample_rate, provenance, peak, size=audio_bytes(len(audio)),
                              replace=replace)


def write_audio_blocks(path: Path, blocks: Iterable[np.ndarray], sample_rate: int, provenance: dict,
                       peak: float = 0.99, block_samples: int = 1 << 18, size: int | None = None,
                       channels: int = 1, replace: bool = True) -> float:
    """`write_audio` for audio that arrives in blocks ([samples] each; [samples, channels] when `channels` > 1),
    never holding the whole signal. The peak is the loudest sample of any channel.

    The gain is known only after the last block, so the blocks go to a float32 temporary file first and a
    second pass writes the scaled file (16-bit PCM, or the format's own coding), renamed into place; a failure
    leaves no file behind. `size`: bytes needed, for the message when the disk is full. Returns the gain
    applied; raises AudioError, naming `path`, at the first block with NaN or inf, OutputFormatError for an
    extension it cannot write and OutputError when the file cannot be written; with `replace` False,
    WouldOverwriteError when another process wrote `path` meanwhile (atomic_file).
    """
    path = Path(path)
    form, subtype = audio_format(path, sample_rate, channels)
    with atomic_file(path, size, replace) as target, _temporary(path, ".f32", size) as (_, floats):
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
