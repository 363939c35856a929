"""Shared fixtures: the real clips ($POP2JAZZ_CLIPS, else ../shared/audio/gtzan_mini), a dataset made from them and a
tiny checkpoint."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import audio_preprocessing
import train
from pop2jazz.dataset import CLIPS_VARIABLE, example_clips
from pop2jazz.judge import CACHE_VARIABLE

ROOT = Path(__file__).resolve().parent.parent
GTZAN_MINI = example_clips()
TINY_MODEL = ["--width", "8", "--n-blocks", "2", "--griffin-lim-iters", "4"]


@pytest.fixture(scope="session", autouse=True)
def judge_cache(tmp_path_factory) -> Path:
    """A judge cache of this session's own (judge.JudgeCache; the children of ab.py and gpu_run.sh inherit it):
    evaluate.py fits the judge of a split once per session, and never reads one a user's earlier run left."""
    folder = tmp_path_factory.mktemp("judge_cache")
    with pytest.MonkeyPatch.context() as patch:  # the session-wide monkeypatch: the variable is restored after
        patch.setenv(CACHE_VARIABLE, str(folder))
        yield folder


@pytest.fixture(scope="session")
def gtzan_mini() -> Path:
    """$POP2JAZZ_CLIPS or ../shared/audio/gtzan_mini (10 pop + 10 jazz real clips); the test is skipped where it is
    absent."""
    if not (GTZAN_MINI / "pop").is_dir() or not (GTZAN_MINI / "jazz").is_dir():
        pytest.skip(f"real clips not found at {GTZAN_MINI} (they come with the project's shared/ folder; set "
                    f"${CLIPS_VARIABLE} to a folder with pop/ and jazz/ songs of your own)")
    return GTZAN_MINI


@pytest.fixture(scope="session")
def dataset(gtzan_mini, tmp_path_factory) -> Path:
    """The 20 shared clips preprocessed with the default representation: a folder with {pop,jazz}_{train,val}/."""
    output = tmp_path_factory.mktemp("data")
    code = audio_preprocessing.main(["--pop", str(gtzan_mini / "pop"), "--jazz", str(gtzan_mini / "jazz"),
                                     "--output", str(output), "--workers", "2"])
    assert code == 0
    return output


@pytest.fixture(scope="session")
def held_out_dataset(gtzan_mini, tmp_path_factory) -> Path:
    """The 20 shared clips preprocessed as experiments/ab.py and the bundled model's training did: 3 of 10 songs
    per domain held out (--val-fraction 0.3, seed 0)."""
    output = tmp_path_factory.mktemp("held_out_data")
    code = audio_preprocessing.main(["--pop", str(gtzan_mini / "pop"), "--jazz", str(gtzan_mini / "jazz"),
                                     "--output", str(output), "--workers", "2", "--val-fraction", "0.3"])
    assert code == 0
    return output


@pytest.fixture(scope="session")
def tiny_run(dataset, tmp_path_factory) -> dict[str, Path]:
    """A 2-epoch, 3-steps-per-epoch run of a width-8, 2-block CycleGAN on `dataset`: its folders."""
    root = tmp_path_factory.mktemp("run")
    folders = {"data": dataset, "checkpoints": root / "checkpoints", "samples": root / "samples"}
    code = train.main(["--data", str(dataset), "--checkpoint-dir", str(folders["checkpoints"]), "--samples-dir",
                       str(folders["samples"]), "--epochs", "2", "--steps-per-epoch", "3", *TINY_MODEL])
    assert code == 0
    return folders


@pytest.fixture(scope="session")
def eval_run(dataset, tmp_path_factory) -> dict[str, Path]:
    """A 4-epoch, 1-step-per-epoch run of a width-4, 1-block CycleGAN on `dataset` with --eval-every 2: its folders;
    its samples folder holds the run's page (index.html) with both curves."""
    root = tmp_path_factory.mktemp("eval_run")
    folders = {"data": dataset, "checkpoints": root / "checkpoints", "samples": root / "samples"}
    code = train.main(["--data", str(dataset), "--checkpoint-dir", str(folders["checkpoints"]), "--samples-dir",
                       str(folders["samples"]), "--name", "tiny <&> run", "--epochs", "4", "--steps-per-epoch", "1",
                       "--eval-every", "2", "--width", "4", "--n-blocks", "1", "--griffin-lim-iters", "4"])
    assert code == 0
    return folders


@pytest.fixture(scope="session")
def small_chunks(tmp_path_factory) -> Path:
    """8 chunks of 128 frames (1.49 s) of noise per domain, no validation songs."""
    root = tmp_path_factory.mktemp("small")
    noise = np.random.default_rng(0)
    for domain in ("pop", "jazz"):
        for index in range(2):
            write_wav(root / domain / f"{index}.wav", (0.1 * noise.standard_normal(6 * 22050)).astype(np.float32),
                      22050)
    assert audio_preprocessing.main(["--pop", str(root / "pop"), "--jazz", str(root / "jazz"), "--output",
                                     str(root / "data"), "--chunk-seconds", "1.5", "--val-fraction", "0"]) == 0
    assert len(list((root / "data" / "pop_train").glob("*.npy"))) == 8
    return root / "data"


TINY_RUN_FIXTURE = ROOT / "tests" / "fixtures" / "cyclegan_format1.pt"  # a tiny CycleGAN, 128-frame chunks
CORRUPT_WAV = b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(range(200))  # a WAV header whose fmt chunk is garbage


def add_tiny_run(root: Path) -> Path:
    """Make `root`/checkpoints/tiny/latest.pt, a run as app.py lists it, from the tiny fixture checkpoint; returns
    its path relative to `root`."""
    checkpoint = Path("checkpoints") / "tiny" / "latest.pt"
    (root / checkpoint).parent.mkdir(parents=True)
    shutil.copy(TINY_RUN_FIXTURE, root / checkpoint)
    return checkpoint


def write_wav(path: Path, audio: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> Path:
    """Write a test signal [samples] or [samples, channels] with soundfile; returns `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, sample_rate, subtype=subtype)
    return path


def sine(seconds: float, sample_rate: int = 22050, frequency: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    """A float32 sine [round(seconds * sample_rate)]."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)
