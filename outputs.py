"""Writing what the tools make without ever losing anything: atomic files and WAV writing that never clips.

A file appears under its name only once it is complete: it is written to a hidden temporary file in the same
folder, fsynced, then renamed over the name, so a crash, a full disk or Ctrl-C leaves the old file (or none).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import torch

from spectrogram import AudioError


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


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """Open a binary file that appears at `path` only when the block ends without error: written to a temporary
    file in the same folder, fsynced, then renamed over `path`. A crash at any point leaves the old file intact."""
    temporary = temporary_beside(Path(path))
    try:
        with open(temporary, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through `atomic_file`: never half-written."""
    with atomic_file(path) as file:
        file.write(data)


def write_wav(path: Path, audio: np.ndarray | torch.Tensor, sample_rate: int, peak: float = 0.99) -> float:
    """Write mono float audio [samples] as 16-bit PCM WAV, atomically, never clipping.

    If the peak exceeds `peak` (full scale = 1.0) the whole signal is scaled down to it. Returns the gain
    applied (1.0 when none). Raises AudioError if the audio holds NaN or inf.
    """
    return write_wav_blocks(path, [torch.as_tensor(audio).detach().cpu().numpy()], sample_rate, peak)


def write_wav_blocks(path: Path, blocks: Iterable[np.ndarray], sample_rate: int, peak: float = 0.99,
                     block_samples: int = 1 << 18) -> float:
    """`write_wav` for audio that arrives in blocks ([samples] each), never holding the whole signal.

    The gain is known only after the last block, so the blocks go to a float32 temporary file first and a
    second pass writes the scaled 16-bit file, renamed into place; a failure leaves no file behind.
    Returns the gain applied; raises AudioError, naming `path`, at the first block with NaN or inf.
    """
    path = Path(path)
    temporaries = [temporary_beside(path, suffix) for suffix in (".f32.wav", ".wav")]
    try:
        loudest = 0.0
        with sf.SoundFile(temporaries[0], "w", sample_rate, 1, subtype="FLOAT") as file:
            for block in blocks:
                block = np.asarray(block, dtype=np.float32)
                if not np.isfinite(block).all():
                    raise AudioError(f"{path}: refusing to write audio with NaN or infinite samples")
                loudest = max(loudest, float(np.abs(block).max()) if block.size else 0.0)
                file.write(block)
        gain = (peak - 2.0**-15) / loudest if loudest > peak else 1.0  # room for 16-bit rounding
        with sf.SoundFile(temporaries[0]) as source, \
                sf.SoundFile(temporaries[1], "w", sample_rate, 1, subtype="PCM_16") as target:
            for block in source.blocks(block_samples, dtype="float32"):
                target.write(block * gain)
        os.replace(temporaries[1], path)
    finally:
        for name in temporaries:
            Path(name).unlink(missing_ok=True)
    return gain
