"""A batch larger than the dataset (issue 23, case 7): train.py and simple_gan.py refuse it before training, exit
code 1, and write nothing; an earlier run that --overwrite would replace is left byte for byte."""

from __future__ import annotations

import shutil

import pytest

import simple_gan
import train
from conftest import TINY_RUN_FIXTURE


def earlier_run(folder):
    folder.mkdir(parents=True)
    shutil.copy(TINY_RUN_FIXTURE, folder / "latest.pt")
    return {path: path.read_bytes() for path in folder.iterdir()}


@pytest.mark.parametrize("tool", ["train", "simple_gan"])
def test_batch_larger_than_the_chunks_is_refused_before_training(small_chunks, tmp_path, capsys, tool):
    checkpoints, samples = tmp_path / "checkpoints", tmp_path / "samples"
    before = earlier_run(checkpoints)
    if tool == "train":  # 8 pop and 8 jazz chunks
        code = train.main(["--data", str(small_chunks), "--checkpoint-dir", str(checkpoints), "--samples-dir",
                           str(samples), "--batch-size", "9", "--overwrite", "--width", "4", "--n-blocks", "1"])
    else:
        code = simple_gan.main(["--data", str(small_chunks / "jazz_train"), "--checkpoint",
                                str(checkpoints / "latest.pt"), "--samples-dir", str(samples), "--batch-size", "9",
                                "--overwrite"])
    err = capsys.readouterr().err
    assert code == 1
    assert "error: --batch-size 9 is larger than the 8 training chunks: lower it or add songs" in err
    assert "Traceback" not in err
    assert {path: path.read_bytes() for path in checkpoints.iterdir()} == before
    assert not samples.exists()
