"""Songs in the formats music libraries hold and libsndfile cannot read (AAC in .m4a, Opus in .webm), decoded by
ffmpeg; and the one line a user gets where ffmpeg is missing. The encoded songs are made here with
ffmpeg from the shared GTZAN clips; the tests that need ffmpeg are skipped, with the reason, where it is missing
(.ci/run installs Debian's ffmpeg)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import audio_preprocessing
import convert
from conftest import TINY_RUN_FIXTURE, write_wav
from pop2jazz.audio_files import AUDIO_EXTENSIONS, INSTALL_FFMPEG, AudioError, install_ffmpeg
from pop2jazz.dataset import scan_folder
from pop2jazz.spectrogram import audio_samples, load_audio

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
                                  reason="ffmpeg is not installed (Debian: apt install ffmpeg; .ci/run installs it)")
SECONDS = 8.0  # of each encoded song


def encode(target: Path, *arguments: str) -> Path:
    """Run ffmpeg with `arguments` (inputs, filters, codec) writing `target`; returns it."""
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *arguments, "-t", str(SECONDS), str(target)],
                   check=True)
    return target


@pytest.fixture(scope="module")
def m4a(gtzan_mini, tmp_path_factory) -> Path:
    """A 44.1 kHz stereo AAC .m4a of 8 s, as a music library holds: pop.00000 on the left, pop.00001 on the right,
    resampled from the clips' 22050 Hz by ffmpeg."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (Debian: apt install ffmpeg; .ci/run installs it)")
    pop = gtzan_mini / "pop"
    return encode(tmp_path_factory.mktemp("m4a") / "song.m4a", "-i", str(pop / "pop.00000.wav"), "-i",
                  str(pop / "pop.00001.wav"), "-filter_complex", "[0:a][1:a]amerge=inputs=2,aresample=44100[a]",
                  "-map", "[a]", "-c:a", "aac", "-b:a", "192k")


def snr_db(reference: np.ndarray, decoded: np.ndarray) -> float:
    """Signal-to-noise ratio of `decoded` against `reference` over their common length, dB."""
    count = min(len(reference), len(decoded))
    error = decoded[:count] - reference[:count]
    return float(10 * np.log10(np.sum(reference[:count] ** 2) / np.sum(error**2)))


@needs_ffmpeg
def test_an_aac_m4a_is_read_as_the_song_it_holds(m4a, gtzan_mini):
    pop = gtzan_mini / "pop"
    frames = int(SECONDS * 22050)
    original = (load_audio(pop / "pop.00000.wav")[:frames] + load_audio(pop / "pop.00001.wav")[:frames]) / 2
    decoded = load_audio(m4a)  # mono at 22050 Hz, as preprocessing, evaluation and training read it
    assert abs(len(decoded) / 22050 - SECONDS) < 0.025  # AAC pads its last 1024-sample frame (23 ms at 44.1 kHz)
    assert snr_db(original, decoded) > 12  # measured 16.4 dB (7.4 dB one sample off): the same music, aligned
    assert abs(audio_samples(m4a) - frames) < 0.025 * 22050  # from ffprobe's header, for sizes and progress


@needs_ffmpeg
def test_opus_in_webm_is_read(gtzan_mini, tmp_path):
    clip = gtzan_mini / "pop" / "pop.00003.wav"
    song = encode(tmp_path / "song.webm", "-i", str(clip), "-ar", "48000", "-c:a", "libopus", "-b:a", "96k")
    decoded = load_audio(song)
    assert abs(len(decoded) / 22050 - SECONDS) < 0.025
    assert snr_db(load_audio(clip), decoded) > 10  # measured 21 dB


@needs_ffmpeg
def test_convert_py_converts_an_m4a_at_its_own_rate_and_length(m4a, tmp_path, capsys):
    output = tmp_path / "song_jazz.wav"
    assert convert.main([str(m4a), "-o", str(output), "--checkpoint", str(TINY_RUN_FIXTURE),
                         "--griffin-lim-iters", "2"]) == 0
    info = sf.info(str(output))
    assert (info.samplerate, info.channels) == (44100, 2)
    assert abs(info.duration - SECONDS) < 0.025
    assert f"{m4a} -> {output}: 8.0 s at 44100 Hz stereo" in capsys.readouterr().out
    assert convert.main([str(m4a), "-o", str(tmp_path / "mono.wav"), "--checkpoint", str(TINY_RUN_FIXTURE),
                         "--griffin-lim-iters", "2", "--mono"]) == 0
    assert sf.info(str(tmp_path / "mono.wav")).samplerate == 22050
    assert abs(sf.info(str(tmp_path / "mono.wav")).duration - SECONDS) < 0.025


@needs_ffmpeg
def test_a_damaged_m4a_is_one_line_naming_it(tmp_path, capsys):
    song = tmp_path / "broken.m4a"
    song.write_bytes(b"\x00\x00\x00\x18ftypM4A \x00\x00\x00\x00" + bytes(100))  # a header and nothing to play
    with pytest.raises(AudioError, match=r"broken.m4a: not a readable audio file \(libsndfile: .*; ffmpeg: "):
        load_audio(song)
    assert convert.main([str(song), "--checkpoint", str(TINY_RUN_FIXTURE)]) == 1
    assert "broken.m4a: not a readable audio file" in capsys.readouterr().err


def test_folders_take_the_library_formats():
    assert {".m4a", ".webm", ".wma", ".aac", ".wav", ".flac", ".mp3", ".opus"} <= set(AUDIO_EXTENSIONS)
    assert ".jpg" not in AUDIO_EXTENSIONS and ".txt" not in AUDIO_EXTENSIONS


def test_without_ffmpeg_the_error_names_the_file_the_format_and_the_install_line(tmp_path, monkeypatch, capsys):
    songs = tmp_path / "pop"
    song = songs / "favourite.m4a"
    songs.mkdir()
    song.write_bytes(b"\x00\x00\x00\x18ftypM4A \x00\x00\x00\x00" + bytes(100))  # libsndfile cannot open it
    write_wav(songs / "other.wav", np.zeros(22050, np.float32), 22050)
    (songs / "cover.jpg").write_bytes(b"\xff\xd8\xff")
    assert [path.name for path in scan_folder(songs).audio] == ["favourite.m4a", "other.wav"]
    monkeypatch.setenv("PATH", str(tmp_path / "nothing here"))  # no ffmpeg, no ffprobe
    expected = (f"{song}: MPEG-4 audio (AAC or ALAC) is read through ffmpeg, which is not installed (ffmpeg and "
                f"ffprobe are not on the PATH): {install_ffmpeg()}, then run again")
    with pytest.raises(AudioError) as error:
        load_audio(song)
    assert str(error.value) == expected
    assert audio_samples(song) == 0
    assert convert.main([str(song), "--checkpoint", str(TINY_RUN_FIXTURE)]) == 1
    assert expected in capsys.readouterr().err
    broken = write_wav(tmp_path / "random.wav", np.zeros(10), 22050)
    broken.write_bytes(b"RIFF" + bytes(60))
    with pytest.raises(AudioError, match="random.wav: not a readable audio file"):  # a libsndfile format: as before
        load_audio(broken)
    jazz = tmp_path / "jazz"
    write_wav(jazz / "a.wav", np.zeros(7 * 22050, np.float32), 22050)
    assert audio_preprocessing.main(["--pop", str(songs), "--jazz", str(jazz), "--output", str(tmp_path / "out"),
                                     "--workers", "1", "--val-fraction", "0"]) == 1  # no pop song could be read
    assert expected in capsys.readouterr().out


@pytest.mark.parametrize("platform, line", [("linux", "sudo apt install ffmpeg"), ("darwin", "brew install ffmpeg"),
                                            ("win32", "winget install ffmpeg")])
def test_the_install_line_is_the_systems(platform, line, monkeypatch):
    monkeypatch.setattr(sys, "platform", platform)
    assert install_ffmpeg().startswith(line) and INSTALL_FFMPEG[platform].startswith(line)
