"""How a command ends: the project's errors, and only they, become one line; a bug keeps its traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT
from pop2jazz.audio_files import AudioError
from pop2jazz.checkpoint import CheckpointError
from pop2jazz.commands import run_command
from pop2jazz.dataset import DataError
from pop2jazz.errors import InputError, MissingFileError, NonFiniteLoss, UserError, WouldOverwriteError
from pop2jazz.output_files import OutputError, OutputFormatError


@pytest.mark.parametrize("error", [AudioError, CheckpointError, DataError, OutputError, OutputFormatError,
                                   InputError, MissingFileError, WouldOverwriteError, NonFiniteLoss])
def test_every_project_error_is_a_user_error(error):
    assert issubclass(error, UserError)


def test_a_user_error_is_one_line_with_exit_1(capsys):
    def command(args):
        raise InputError(f"{args}: 1.2 s is shorter than one chunk (5.94 s): pass a longer song")

    assert run_command(command, "song.wav") == 1
    assert capsys.readouterr().err == \
        "\nerror: song.wav: 1.2 s is shorter than one chunk (5.94 s): pass a longer song\n"


def test_a_non_finite_loss_exits_with_2(capsys):
    def command(args):
        raise NonFiniteLoss("non-finite loss at epoch 2, step 1")

    assert run_command(command, None) == 2
    assert "error: non-finite loss at epoch 2" in capsys.readouterr().err


def test_a_stray_value_error_is_a_bug_and_keeps_its_traceback():
    def command(args):
        return int("not a number")  # a ValueError from a bug, not from the user

    with pytest.raises(ValueError, match="invalid literal"):
        run_command(command, None)


def test_a_bug_in_a_real_command_prints_its_traceback(tmp_path):
    """evaluate.py, convert.py and audio_preprocessing.py once took every ValueError for a user error."""
    script = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); import convert\n"
              "def broken(*args, **kwargs): raise ValueError('a bug in the conversion')\n"
              "convert.load_model = broken\n"
              f"sys.exit(convert.main([{str(tmp_path / 'song.wav')!r}]))\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 1 and "Traceback" in run.stderr and "ValueError: a bug in the conversion" in run.stderr
