"""Song names near the file system's limit of 255 bytes (issue 23, case 3): a temporary file never makes a name
that fits fail, an output name that cannot fit is one line naming the song before any work, and preprocessing
uses every song."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import audio_preprocessing
import convert
from conftest import TINY_RUN_FIXTURE, write_wav
from pop2jazz.output_files import atomic_write_bytes, name_max, temporary_beside


def noise(seconds: float, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(round(seconds * 22050))).astype(np.float32)


def test_the_temporary_name_of_a_name_that_fits_fits(tmp_path):
    limit = name_max(tmp_path)
    name = "x" * (limit - 4) + ".wav"
    temporary = Path(temporary_beside(tmp_path / name))
    assert len(temporary.name.encode()) <= limit
    temporary.unlink()
    atomic_write_bytes(tmp_path / name, b"data")
    assert [path.name for path in tmp_path.iterdir()] == [name]


def test_a_240_byte_song_converts_beside_itself(tmp_path, capsys):
    song = write_wav(tmp_path / ("é" * 120 + ".wav"), noise(3.0), 22050)  # 240 bytes + .wav
    code = convert.main([str(song), "--checkpoint", str(TINY_RUN_FIXTURE), "--griffin-lim-iters", "1"])
    output = song.with_name(song.stem + "_jazz.wav")
    assert code == 0, capsys.readouterr().err
    assert len(output.name.encode()) == 249
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([song.name, output.name])


def test_an_output_name_that_cannot_fit_is_one_line_before_any_work(tmp_path, capsys):
    song = write_wav(tmp_path / ("s" * 250 + ".wav"), noise(3.0), 22050)
    earlier = write_wav(tmp_path / "earlier_jazz.wav", noise(1.0, 1), 22050)
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    code = convert.main([str(song), "--checkpoint", str(TINY_RUN_FIXTURE)])
    err = capsys.readouterr().err
    assert code == 1
    assert (f"error: {song}: cannot write its output {'s' * 250}_jazz.wav: its name is 259 bytes, more than the "
            f"{name_max(tmp_path)} a file name can have there; pass -o with a shorter name") in err
    assert "Traceback" not in err and "converted" not in err
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before
    assert earlier.read_bytes() == before["earlier_jazz.wav"]
    assert convert.main([str(song), "--checkpoint", str(TINY_RUN_FIXTURE), "--griffin-lim-iters", "1", "-o",
                         str(tmp_path / "short.wav")]) == 0  # the way out the message gives


def test_a_song_in_a_folder_with_a_long_name_is_named_and_the_others_convert(tmp_path, capsys):
    songs = tmp_path / "songs"
    long = write_wav(songs / ("s" * 250 + ".wav"), noise(3.0), 22050)
    write_wav(songs / "short.wav", noise(3.0, 1), 22050)
    code = convert.main([str(songs), "--checkpoint", str(TINY_RUN_FIXTURE), "--griffin-lim-iters", "1"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"{long}: cannot write its output" in err and "convert it alone with -o and a shorter name" in err
    assert "Traceback" not in err
    assert (songs / "short_jazz.wav").is_file()


def test_preprocessing_uses_every_song_whatever_its_name(tmp_path, capsys):
    for domain in ("pop", "jazz"):
        write_wav(tmp_path / domain / ("p" * 250 + ".wav"), noise(3.2), 22050)
        write_wav(tmp_path / domain / "deep" / ("é" * 60) / ("q" * 200 + ".flac"), noise(3.2, 1), 22050)
        write_wav(tmp_path / domain / "short.wav", noise(3.2, 2), 22050)
    code = audio_preprocessing.main(["--pop", str(tmp_path / "pop"), "--jazz", str(tmp_path / "jazz"), "--output",
                                     str(tmp_path / "data"), "--chunk-seconds", "1.5", "--val-fraction", "0",
                                     "--workers", "1"])
    assert code == 0, capsys.readouterr().err
    for domain in ("pop", "jazz"):
        chunks = sorted(path.name for path in (tmp_path / "data" / f"{domain}_train").glob("*.npy"))
        assert len(chunks) == 6  # 2 chunks of each of the 3 songs
        assert max(len(name.encode()) for name in chunks) <= 255
