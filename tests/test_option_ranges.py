"""Numeric options out of range (issue 23, case 6): every command refuses each one at once, exit code 2, with the
allowed range, before reading a song or a checkpoint."""

from __future__ import annotations

import subprocess
import sys

import pytest

import app
import audio_preprocessing
import benchmark
import convert
import evaluate
import simple_gan
import train
from conftest import ROOT

COMMANDS = {"convert": convert, "train": train, "simple_gan": simple_gan, "evaluate": evaluate, "app": app,
            "audio_preprocessing": audio_preprocessing, "benchmark": benchmark}
# (command, option, a bad value, what the message says is allowed)
CASES = [
    ("convert", "--batch-size", "0", "must be a whole number >= 1"),
    ("convert", "--griffin-lim-iters", "-1", "must be a whole number >= 0"),
    ("convert", "--overlap", "1", "must be in [0, 1)"),
    ("convert", "--overlap", "-0.1", "must be in [0, 1)"),
    ("convert", "--overlap", "nan", "is not a finite number"),
    ("train", "--epochs", "0", ">= 1"),
    ("train", "--batch-size", "0", ">= 1"),
    ("train", "--width", "0", ">= 1"),
    ("train", "--n-blocks", "-1", ">= 0"),
    ("train", "--disc-width", "0", ">= 1"),
    ("train", "--steps-per-epoch", "-1", ">= 0"),
    ("train", "--lr", "0", "must be > 0"),
    ("train", "--lr", "inf", "is not a finite number"),
    ("train", "--lambda-cycle", "-1", "must be >= 0"),
    ("train", "--lambda-identity", "-0.5", "must be >= 0"),
    ("train", "--pool-size", "-1", ">= 0"),
    ("train", "--griffin-lim-iters", "-1", ">= 0"),
    ("train", "--seed", "-1", ">= 0"),
    ("train", "--workers", "-1", ">= 0"),
    ("train", "--stop-after", "-1", ">= 0"),
    ("train", "--eval-every", "-2", ">= 0"),
    ("train", "--epochs", "2.5", "'2.5' is not a whole number"),
    ("simple_gan", "--epochs", "0", ">= 1"),
    ("simple_gan", "--batch-size", "1", ">= 2"),
    ("simple_gan", "--real-label", "0", "must be in (0, 1]"),
    ("simple_gan", "--real-label", "1.5", "must be in (0, 1]"),
    ("simple_gan", "--image-size", "0", ">= 1"),
    ("simple_gan", "--latent-dim", "0", ">= 1"),
    ("simple_gan", "--hidden", "0", ">= 1"),
    ("simple_gan", "--lr", "-1", "must be > 0"),
    ("simple_gan", "--sample-every", "0", ">= 1"),
    ("simple_gan", "--n-wavs", "17", "in 0..16"),
    ("simple_gan", "--griffin-lim-iters", "-1", ">= 0"),
    ("simple_gan", "--seed", "-1", ">= 0"),
    ("evaluate", "--griffin-lim-iters", "-1", ">= 0"),
    ("evaluate", "--seed", "-1", ">= 0"),
    ("app", "--port", "0", "in 1..65535"),
    ("app", "--port", "65536", "in 1..65535"),
    ("app", "--max-upload-mb", "0", "must be > 0"),
    ("app", "--griffin-lim-iters", "-1", ">= 0"),
    ("audio_preprocessing", "--chunk-seconds", "0.5", "must be >= 0.75"),
    ("audio_preprocessing", "--val-fraction", "1", "must be in [0, 1)"),
    ("audio_preprocessing", "--workers", "0", ">= 1"),
    ("audio_preprocessing", "--seed", "-1", ">= 0"),
    ("benchmark", "--batch-size", "0", ">= 1"),
    ("benchmark", "--threads", "0", ">= 1"),
    ("benchmark", "--train-batch-sizes", "1,0", ">= 1"),
]


@pytest.mark.parametrize(("command", "option", "value", "allowed"), CASES,
                         ids=[f"{command} {option} {value}" for command, option, value, _ in CASES])
def test_out_of_range_is_refused_at_once_with_the_range(command, option, value, allowed, capsys):
    with pytest.raises(SystemExit) as raised:
        COMMANDS[command].parse_args([f"{option}={value}"])
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err
    assert allowed in err


@pytest.mark.parametrize(("command", "argv"), [
    ("convert", ["--batch-size", "8", "--overlap", "0", "--griffin-lim-iters", "0"]),
    ("train", ["--n-blocks", "0", "--lambda-identity", "0", "--pool-size", "0", "--steps-per-epoch", "0"]),
    ("simple_gan", ["--batch-size", "2", "--real-label", "1", "--n-wavs", "0"]),
    ("audio_preprocessing", ["--val-fraction", "0", "--chunk-seconds", "0.75"]),
    ("benchmark", ["--train-batch-sizes", "1,4"]),
])
def test_the_ends_of_the_ranges_are_taken(command, argv):
    COMMANDS[command].parse_args(argv)


@pytest.mark.slow
def test_convert_batch_size_0_exits_2_before_loading_anything(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "convert.py"), "song.wav", "--batch-size", "0"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert "argument --batch-size: 0 is out of range: must be a whole number >= 1" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []
