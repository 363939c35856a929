"""Reading songs from disk as they are: every channel at the file's own sample rate, block by block.

libsndfile (through soundfile) reads what it can: wav, flac, ogg (Vorbis, Opus), mp3, aiff, caf, ... The formats
music libraries hold beyond those (AAC and ALAC in .m4a, Opus in .webm, WMA, ...) are decoded by ffmpeg, when it is
installed, as are files of any extension libsndfile cannot open. ffmpeg runs as a child process that writes 32-bit
float samples to a pipe, read a block at a time, so a song is never held whole; its stream's rate and channel
count come from ffprobe, which comes with ffmpeg. (librosa's fallback, audioread, decodes through the same ffmpeg
but gives 16-bit samples, finds the rate and channels by reading ffmpeg's log text, and librosa.stream does not
use it.) spectrogram.py turns these blocks into the model's mono audio; the full-quality conversion
(full_quality.py) uses them as they are.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from pop2jazz.errors import UserError

# file extensions of the formats libsndfile reads, beyond the format names themselves; RAW is left out: a headerless
# file needs its rate and sample type given, so it cannot be read as a song
EXTENSION_ALIASES = {"aif": "AIFF", "aifc": "AIFF", "snd": "AU", "oga": "OGG", "opus": "OGG", "sph": "NIST",
                     "mat": "MAT5", "iff": "SVX", "8svx": "SVX", "sf": "IRCAM"}
AUDIO_FORMATS = {**{name.lower(): name for name in sf.available_formats() if name != "RAW"},
                 **{alias: name for alias, name in EXTENSION_ALIASES.items() if name in sf.available_formats()}}
# what libsndfile does not read and ffmpeg does: the extension and what a user knows the format as
FFMPEG_FORMATS = {extension: name for extension, name in {
                  "m4a": "MPEG-4 audio (AAC or ALAC)", "m4b": "MPEG-4 audiobook (AAC)", "mp4": "MPEG-4 (AAC)",
                  "aac": "AAC (ADTS)", "alac": "Apple Lossless (ALAC)", "webm": "WebM (Opus or Vorbis)",
                  "mka": "Matroska audio", "wma": "Windows Media Audio (WMA)", "ac3": "Dolby Digital (AC-3)",
                  "ape": "Monkey's Audio (APE)", "wv": "WavPack"}.items() if extension not in AUDIO_FORMATS}
# what the folder scans take: the ffmpeg formats too, also where ffmpeg is missing, so reading says to install it
AUDIO_EXTENSIONS = tuple(sorted(f".{extension}" for extension in [*AUDIO_FORMATS, *FFMPEG_FORMATS]))
INSTALL_FFMPEG = {"linux": "sudo apt install ffmpeg (Debian, Ubuntu; or your distribution's package manager)",
                  "darwin": "brew install ffmpeg", "win32": "winget install ffmpeg"}


class AudioError(UserError, ValueError):
    """An audio file that cannot be used; the message names the file and says why."""


@dataclasses.dataclass(frozen=True)
class AudioInfo:
    """What a file's header says: `sample_rate` (Hz), `channels`, `frames` (samples per channel; from the
    stream's duration for ffmpeg, so about) and `reader` ("libsndfile" or "ffmpeg")."""

    sample_rate: int
    channels: int
    frames: int
    reader: str

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


def soundfile_path(path: Path) -> str | bytes:
    """`path` as soundfile should get it: bytes on POSIX, so a name that is not valid UTF-8 (Latin-1 'caf\\xe9.wav',
    held by Python as a surrogate escape) reaches libsndfile as the bytes on disk; soundfile encodes a str strictly
    and fails on it. Windows names are Unicode: a str there."""
    return str(path) if os.name == "nt" else os.fsencode(path)


def ffmpeg_input(path: Path) -> str | bytes:
    """`path` as ffmpeg's -i takes it: with the file: protocol, so a name with a colon ('a:b.m4a') or one
    starting with '-' is a file name, and as bytes on POSIX (see soundfile_path)."""
    return f"file:{path}" if os.name == "nt" else b"file:" + os.fsencode(path)


def install_ffmpeg() -> str:
    """The one-line install of ffmpeg for this system, e.g. 'brew install ffmpeg' on macOS."""
    return INSTALL_FFMPEG.get(sys.platform, "install ffmpeg from https://ffmpeg.org/download.html")


def ffmpeg_missing(path: Path) -> str | None:
    """None when ffmpeg and ffprobe are on the PATH; else the AudioError message for `path`: the file, its format
    and the line that installs ffmpeg."""
    if shutil.which("ffmpeg") and shutil.which("ffprobe"):
        return None
    extension = Path(path).suffix.lower().removeprefix(".")
    form = FFMPEG_FORMATS.get(extension, f".{extension} audio" if extension else "this audio")
    return (f"{path}: {form} is read through ffmpeg, which is not installed (ffmpeg and ffprobe are not on the "
            f"PATH): {install_ffmpeg()}, then run again")


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")
    if path.name.startswith("._"):
        raise AudioError(f"{path}: a macOS metadata sidecar ('._' file), not audio")


def _probe(path: Path) -> AudioInfo:
    """The first audio stream of `path` as ffprobe sees it; raises AudioError with ffprobe's reason."""
    command = ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
               "stream=sample_rate,channels,duration:format=duration", "-of", "json", ffmpeg_input(path)]
    result = subprocess.run(command, capture_output=True, stdin=subprocess.DEVNULL)
    try:
        found = json.loads(result.stdout or b"{}")
        stream = found["streams"][0]
        rate, channels = int(stream["sample_rate"]), int(stream["channels"])
    except (ValueError, KeyError, IndexError, TypeError):
        reason = result.stderr.decode(errors="replace").strip().splitlines()
        raise AudioError(reason[-1].removeprefix(f"file:{path}: ") if reason else "no audio stream") from None
    seconds = stream.get("duration") or found.get("format", {}).get("duration") or 0
    return AudioInfo(rate, channels, round(float(seconds) * rate), "ffmpeg")


def ogg_chain_lengths(path: Path) -> list[int]:
    """The last granule position of each chained stream of an Ogg file, in file order: one entry for a plain Ogg
    file, several for streams joined end to end (`cat a.ogg b.ogg`, an Internet radio recording), of which
    libsndfile (and ffprobe's duration) know only the first. Walks the page headers only; [] when `path` is not
    Ogg. A page that starts a stream (its BOS flag) after pages of data starts a new link of the chain."""
    lengths: list[int] = []
    in_data = False
    with open(path, "rb") as file:
        while len(header := file.read(27)) == 27 and header[:4] == b"OggS":
            flags, granule = header[5], int.from_bytes(header[6:14], "little", signed=True)
            segments = file.read(header[26])
            if flags & 0x02 and (in_data or not lengths):  # a beginning-of-stream page: a new link
                lengths.append(0)
                in_data = False
            elif not flags & 0x02:
                in_data = True
            if granule > 0:
                lengths[-1] = max(lengths[-1], granule)
            file.seek(sum(segments), os.SEEK_CUR)
    return lengths


def _chained_frames(path: Path, file_format: str, frames: int) -> int | None:
    """For an Ogg file of several chained streams: about its frames in all (libsndfile's `frames` of the first
    stream, scaled by the chain's granule positions); None for any other file."""
    if file_format != "OGG":
        return None
    try:
        lengths = ogg_chain_lengths(path)
    except OSError:
        return None
    if len(lengths) < 2 or lengths[0] <= 0:
        return None
    return round(frames * sum(lengths) / lengths[0])


def audio_info(path: Path) -> AudioInfo | None:
    """The header of `path` (libsndfile's, else ffprobe's), or None when neither can read it. The frames of a
    chained Ogg file count every stream (see open_audio)."""
    try:
        info = sf.info(soundfile_path(path))
        chained = _chained_frames(Path(path), info.format, info.frames)
        if chained is not None and ffmpeg_missing(path) is None:
            return AudioInfo(info.samplerate, info.channels, chained, "ffmpeg")
        return AudioInfo(info.samplerate, info.channels, info.frames, "libsndfile")
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, OSError):
        pass
    if ffmpeg_missing(path) is not None:
        return None
    try:
        return _probe(Path(path))
    except AudioError:
        return None


def open_audio(path: Path, block_samples: int = 1 << 18) -> tuple[AudioInfo, Iterator[np.ndarray]]:
    """Open an audio file: (its header, its float32 blocks [samples, channels] at its own sample rate, read one
    block in memory at a time: about `block_samples` samples each, the last shorter). Values as stored (an
    integer file's full scale is +-1.0).

    libsndfile first; when it cannot open the file, ffmpeg (see the module docstring). Raises AudioError naming
    the file when it is missing, empty, a macOS sidecar or unreadable by both (when ffmpeg is missing: the
    format and the line that installs it); the blocks raise it when the file has no frames or holds non-finite
    samples (possibly after earlier blocks were yielded), and warn (UserWarning) when the file ends before its
    header says it should. A file whose header under-reports its length (Ogg streams chained end to end, of which
    libsndfile reads the first) is read through ffmpeg, which decodes them all; without ffmpeg, a UserWarning
    names the file and both lengths.
    """
    path = Path(path)
    _check_file(path)
    try:
        file = sf.SoundFile(soundfile_path(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
        missing = ffmpeg_missing(path)
        if missing and path.suffix.lower().removeprefix(".") in FFMPEG_FORMATS:
            raise AudioError(missing) from error
        if missing:
            raise AudioError(f"{path}: not a readable audio file ({error})") from error
        try:
            info = _probe(path)
        except AudioError as reason:
            raise AudioError(f"{path}: not a readable audio file (libsndfile: {error}; ffmpeg: {reason})") \
                from None
        return info, _ffmpeg_blocks(path, info, block_samples)
    chained = _chained_frames(path, file.format, file.frames)
    if chained is not None:  # libsndfile would stop at the end of the first stream
        header_seconds = file.frames / file.samplerate
        if ffmpeg_missing(path) is None:
            info = AudioInfo(file.samplerate, file.channels, chained, "ffmpeg")
            file.close()
            return info, _at_most(_ffmpeg_blocks(path, info, block_samples), chained)
        warnings.warn(f"{path}: {len(ogg_chain_lengths(path))} Ogg streams joined end to end, about "
                      f"{chained / file.samplerate:.2f} s in all, but its header says {header_seconds:.2f} s and "
                      f"libsndfile reads only that; using the first {header_seconds:.2f} s: install ffmpeg "
                      f"({install_ffmpeg()}) to read all of it")
    return AudioInfo(file.samplerate, file.channels, file.frames, "libsndfile"), \
        _sndfile_blocks(path, file, block_samples)


def _at_most(blocks: Iterator[np.ndarray], frames: int) -> Iterator[np.ndarray]:
    """`blocks` up to `frames` frames in all: a chained Ogg file as long as its streams' granule positions say
    (ffmpeg gives a few hundred samples of decoder start-up more at each join)."""
    left = frames
    for block in blocks:
        if left <= 0:
            blocks.close()  # ends the decoder
            return
        yield block[:left]
        left -= len(block)


def _sndfile_blocks(path: Path, file: sf.SoundFile, block_samples: int) -> Iterator[np.ndarray]:
    read = 0
    try:
        with file:
            extra_info, file_rate = file.extra_info, file.samplerate
            for block in file.blocks(block_samples, dtype="float32", always_2d=True):
                if not np.isfinite(block).all():
                    raise AudioError(f"{path}: holds NaN or infinite samples")
                read += block.shape[0]
                yield block
    except AudioError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
        raise AudioError(f"{path}: not a readable audio file ({error})") from error
    if read == 0:
        raise AudioError(f"{path}: holds no audio frames")
    if "should be" in extra_info:  # libsndfile's note when a header promises more data than the file holds
        warnings.warn(f"{path}: truncated or damaged file (the header promises more audio than is there); "
                      f"using the {read / max(file_rate, 1):.2f} s that could be read")


def _ffmpeg_blocks(path: Path, info: AudioInfo, block_samples: int) -> Iterator[np.ndarray]:
    """The blocks of the first audio stream of `path`, decoded by ffmpeg to 32-bit float at the stream's own
    rate and channel count (`info`, from ffprobe)."""
    command = ["ffmpeg", "-nostdin", "-v", "error", "-i", ffmpeg_input(path), "-map", "0:a:0", "-vn", "-sn", "-dn",
               "-f", "f32le", "-acodec", "pcm_f32le", "-ac", str(info.channels), "-ar", str(info.sample_rate),
               "pipe:1"]
    frame_bytes = 4 * info.channels
    read = 0
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: a chatty decoder can never block on it
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log)
        try:
            while data := process.stdout.read(frame_bytes * block_samples):
                block = np.frombuffer(data[: len(data) // frame_bytes * frame_bytes], np.float32)
                block = block.reshape(-1, info.channels)
                if not np.isfinite(block).all():
                    raise AudioError(f"{path}: holds NaN or infinite samples")
                read += len(block)
                yield block
            failed = process.wait() != 0
        finally:
            if process.poll() is None:  # the reader stopped early (an error, Ctrl-C): no decoder left behind
                process.kill()
                process.wait()
            process.stdout.close()
        log.seek(0)
        reason = log.read().decode(errors="replace").strip().splitlines()
    if read == 0:
        raise AudioError(f"{path}: not a readable audio file (ffmpeg: {reason[-1] if reason else 'no audio'})")
    if failed:
        warnings.warn(f"{path}: truncated or damaged file (ffmpeg: {reason[-1] if reason else 'stopped early'}); "
                      f"using the {read / info.sample_rate:.2f} s that could be read")
