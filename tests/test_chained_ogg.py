"""A song longer than its header says (issue 23, case 8): Ogg streams joined end to end (`cat a.ogg b.ogg`), of
which libsndfile and ffprobe know only the first. Every tool reads all of it through ffmpeg; without ffmpeg a
warning names the file and both lengths."""

from __future__ import annotations

import shutil
import warnings

import pytest
import soundfile as sf

import audio_preprocessing
import convert
from conftest import TINY_RUN_FIXTURE, sine
from pop2jazz import audio_files
from pop2jazz.audio_files import audio_info, ogg_chain_lengths, open_audio
from pop2jazz.spectrogram import load_audio

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
                                  reason="ffmpeg is not installed")


def chained_ogg(path, seconds=4.0, sample_rate=22050):
    """Two Ogg Vorbis files of `seconds` each, written by soundfile, their bytes joined into `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = []
    for index, frequency in enumerate((440.0, 660.0)):
        part = path.with_name(f"part{index}.ogg")
        sf.write(str(part), sine(seconds, sample_rate, frequency), sample_rate, format="OGG", subtype="VORBIS")
        parts.append(part.read_bytes())
        part.unlink()
    path.write_bytes(b"".join(parts))
    return path


def test_the_header_under_reports_it(tmp_path):
    song = chained_ogg(tmp_path / "song.ogg")
    assert sf.info(str(song)).frames == 4 * 22050  # what libsndfile's header says
    assert ogg_chain_lengths(song) == [4 * 22050, 4 * 22050]


@needs_ffmpeg
def test_it_is_read_whole_through_ffmpeg(tmp_path):
    song = chained_ogg(tmp_path / "song.ogg")
    info, blocks = open_audio(song)
    assert sum(len(block) for block in blocks) == 8 * 22050
    assert info.frames == audio_info(song).frames == 8 * 22050
    assert len(load_audio(song, 22050)) == 8 * 22050


@needs_ffmpeg
def test_convert_writes_all_8_seconds(tmp_path, capsys):
    song = chained_ogg(tmp_path / "song.ogg")
    earlier = tmp_path / "earlier_jazz.wav"
    sf.write(str(earlier), sine(1.0), 22050)
    before = earlier.read_bytes()
    code = convert.main([str(song), "--checkpoint", str(TINY_RUN_FIXTURE), "--griffin-lim-iters", "1", "-o",
                         str(tmp_path / "out.wav")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert sf.info(str(tmp_path / "out.wav")).frames == 8 * 22050
    assert "8.0 s at 22050 Hz" in captured.out
    assert earlier.read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["earlier_jazz.wav", "out.wav", "song.ogg"]


@needs_ffmpeg
def test_preprocessing_chunks_all_of_it(tmp_path, capsys):
    for domain in ("pop", "jazz"):
        chained_ogg(tmp_path / domain / "song.ogg")
    code = audio_preprocessing.main(["--pop", str(tmp_path / "pop"), "--jazz", str(tmp_path / "jazz"), "--output",
                                     str(tmp_path / "data"), "--chunk-seconds", "1.5", "--val-fraction", "0",
                                     "--workers", "1"])
    assert code == 0, capsys.readouterr().err
    assert len(list((tmp_path / "data" / "pop_train").glob("*.npy"))) == 5  # 8 s of 1.49 s chunks, not 2


def test_without_ffmpeg_a_warning_names_the_file_and_both_lengths(tmp_path, monkeypatch):
    song = chained_ogg(tmp_path / "song.ogg")
    monkeypatch.setattr(audio_files.shutil, "which", lambda name: None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        info, blocks = open_audio(song)
        read = sum(len(block) for block in blocks)
    assert read == info.frames == 4 * 22050
    messages = [str(warning.message) for warning in caught]
    assert any(f"{song}: 2 Ogg streams joined end to end, about 8.00 s in all, but its header says 4.00 s" in message
               and "install ffmpeg" in message for message in messages), messages
