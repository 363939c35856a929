"""Files named as a checkpoint that are not one this version can use (issue 23, cases 1 and 2): a Git LFS pointer,
a saved HTML error page or other text, and a checkpoint of a newer pop2jazz. Each is one line naming the file and
what to do, exit code 1, and no output is written."""

from __future__ import annotations

import pytest
import torch

import convert
import evaluate
from conftest import TINY_RUN_FIXTURE, sine, write_wav
from pop2jazz.checkpoint import CHECKPOINT_FORMAT, CheckpointError, load_checkpoint

LFS_POINTER = (b"version https://git-lfs.github.com/spec/v1\n"
               b"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 1153606\n")
HTML_PAGE = b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body>Not Found</body></html>\n"


def writer(data: bytes):
    def make(path):
        path.write_bytes(data)
        return path
    return make


def newer_checkpoint(path):
    state = torch.load(TINY_RUN_FIXTURE, weights_only=True)
    torch.save({**state, "format": CHECKPOINT_FORMAT + 1}, path)
    return path


CASES = {
    "lfs": (writer(LFS_POINTER),
            "is a Git LFS pointer (a small text file), not the model: run `git lfs pull` or download it again"),
    "html": (writer(HTML_PAGE),
             "is an HTML page (a saved web or error page"),
    "text": (writer(b"Access denied\n"), "is a text file (14 bytes), not a checkpoint"),
    "newer": (newer_checkpoint, f"was written by a newer pop2jazz (checkpoint format {CHECKPOINT_FORMAT + 1}; this "
                                f"version reads {CHECKPOINT_FORMAT}): update pop2jazz"),
}


@pytest.mark.parametrize("case", CASES)
def test_load_checkpoint_names_what_the_file_is(tmp_path, case):
    make, message = CASES[case]
    path = make(tmp_path / "latest.pt")
    with pytest.raises(CheckpointError, match="latest.pt") as raised:
        load_checkpoint(path)
    assert message in str(raised.value)


@pytest.mark.parametrize("case", CASES)
def test_convert_refuses_it_in_one_line_and_writes_nothing(tmp_path, capsys, case):
    make, message = CASES[case]
    checkpoint = make(tmp_path / "model.pt")
    song = write_wav(tmp_path / "song.wav", sine(7.0), 22050)
    earlier = write_wav(tmp_path / "song_jazz.wav", sine(1.0, frequency=220), 22050)
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    code = convert.main([str(song), "--checkpoint", str(checkpoint), "-o", str(tmp_path / "out.wav")])
    err = capsys.readouterr().err
    assert code == 1
    assert f"error: {checkpoint} {message}" in err or f"error: {checkpoint}: {message}" in err
    assert "Traceback" not in err
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before  # out.wav never appeared
    assert earlier.read_bytes() == before["song_jazz.wav"]


@pytest.mark.parametrize("case", ["lfs", "newer"])
def test_evaluate_refuses_it_before_any_work(tmp_path, capsys, case):
    make, message = CASES[case]
    checkpoint = make(tmp_path / "model.pt")
    code = evaluate.main(["--checkpoint", str(checkpoint), "--data", str(tmp_path / "data"), "-o",
                          str(tmp_path / "report")])
    assert code == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "report").exists()
