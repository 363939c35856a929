"""Bad input, faults and untrusted files: unreadable, truncated, short, silent or non-finite audio, odd sample
rates and formats, loud outputs, resuming, crashes while saving, crafted checkpoints, paths. Each gives a clear
error or the right value, and nothing is lost. Each test builds its small input with numpy + soundfile."""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

import audio_preprocessing
import convert
import train
from conftest import ROOT, sine, write_wav
from pop2jazz import output_files as outputs
from pop2jazz import preprocessing
from pop2jazz.audio_files import AudioError
from pop2jazz.checkpoint import load_checkpoint, save_checkpoint
from pop2jazz.conversion import convert_audio
from pop2jazz.dataset import ChunkFolder
from pop2jazz.output_files import write_audio
from pop2jazz.spectrogram import Representation, audio_to_image, load_audio, spectral_convergence, stft

REP = Representation()
RNG = np.random.default_rng(0)


def noise(seconds: float, sample_rate: int = 22050) -> np.ndarray:
    return (0.1 * RNG.standard_normal(round(seconds * sample_rate))).astype(np.float32)


@pytest.fixture()
def checkpoint(tiny_run) -> Path:
    return tiny_run["checkpoints"] / "latest.pt"


class IdentityGenerator(nn.Module):
    """A 'generator' that returns its input, to test everything around the network."""

    def __init__(self):
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))  # convert reads the device from the parameters

    def forward(self, x):
        return x


# 1. unreadable files among good ones
def test_bad_files_are_skipped_named_and_counted(tmp_path, capsys, checkpoint):
    pop, jazz = tmp_path / "pop", tmp_path / "jazz"
    for folder in (pop, jazz):
        write_wav(folder / "good1.wav", noise(13.0), 22050)
        write_wav(folder / "good2.flac", noise(13.0), 22050)
    (jazz / "jazz.00054.wav").write_bytes(b"")
    (jazz / "random.wav").write_bytes(RNG.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    (jazz / "._pop.00000.wav").write_bytes(b"\x00\x05\x16\x07" + bytes(207))
    summary = preprocessing.preprocess({"pop": pop, "jazz": jazz}, tmp_path / "out", REP, workers=2)
    output = capsys.readouterr().out
    assert "jazz.00054.wav: empty file (0 bytes)" in output
    assert "random.wav: not a readable audio file" in output
    assert "._pop.00000.wav: a macOS metadata sidecar" in output
    assert summary["jazz"]["files_read"] == 2 and summary["jazz"]["files_skipped"] == 3
    assert summary["jazz"]["train_chunks"] + summary["jazz"]["val_chunks"] == 2 * 2  # 13 s -> 2 chunks of 5.94 s each
    assert convert.main([str(jazz / "random.wav"), "--checkpoint", str(checkpoint)]) == 1
    assert "random.wav: not a readable audio file" in capsys.readouterr().err


def test_truncated_wav_warns(tmp_path):
    whole = write_wav(tmp_path / "whole.wav", noise(4.0), 22050)
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.warns(UserWarning, match="truncated.wav: truncated or damaged"):
        audio = load_audio(truncated)
    assert abs(len(audio) - 2 * 22050) < 100  # what is there is used


# 2. 8-bit unsigned PCM
def test_8_bit_unsigned_pcm_has_no_dc_offset(tmp_path, checkpoint):
    t = np.arange(round(2.5 * 8000)) / 8000
    path = write_wav(tmp_path / "u8.wav", np.where(t < 1.0, 0.0, 0.5 * np.sin(2 * np.pi * 440 * t)), 8000, "PCM_U8")
    audio = load_audio(path)
    assert len(audio) == 55125
    assert np.abs(audio[:20000]).max() < 1e-3  # the first second: byte 128 is zero
    assert abs(np.abs(audio).max() - 0.5) < 0.02
    assert convert.main([str(path), "--checkpoint", str(checkpoint), "-o", str(tmp_path / "out.wav")]) == 0
    assert sf.info(str(tmp_path / "out.wav")).frames == 55125  # a short song (case 3)


# 3. shorter than a chunk
def test_short_songs_are_padded_in_convert_and_refused_by_preprocessing(tmp_path, capsys):
    converted = convert_audio(IdentityGenerator(), sine(2.5), REP, n_iter=4)
    assert converted.shape == (55125,)
    for folder in ("pop", "jazz"):
        for index in range(3):
            write_wav(tmp_path / folder / f"short{index}.wav", noise(5.0), 22050)
    code = audio_preprocessing.main(["--pop", str(tmp_path / "pop"), "--jazz", str(tmp_path / "jazz"),
                                     "--output", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out.count("is shorter than one chunk") == 6
    assert "no chunks for pop" in captured.err
    assert not (tmp_path / "out" / "pop_train").exists()


# 4. silence
def test_silence_stays_silent_and_finite(tmp_path, checkpoint):
    silent = write_wav(tmp_path / "silence.wav", np.zeros(10 * 22050, np.float32), 22050)
    tail = noise(6.002)
    tail[-44:] = 0.0
    ends_silent = write_wav(tmp_path / "tail.wav", tail, 22050)
    for path in (silent, ends_silent):
        image = audio_to_image(load_audio(path))
        assert torch.isfinite(image).all()
        output = tmp_path / f"{path.stem}_out.wav"
        assert convert.main([str(path), "--checkpoint", str(checkpoint), "-o", str(output)]) == 0
        audio, _ = sf.read(str(output))
        assert len(audio) == sf.info(str(path)).frames and np.isfinite(audio).all()
    audio, _ = sf.read(str(tmp_path / "silence_out.wav"))
    assert np.abs(audio).max() < 1e-4


# 5. unequal lengths
def test_chunk_count_follows_each_files_duration(tmp_path):
    for domain in ("pop", "jazz"):
        write_wav(tmp_path / domain / "long.wav", noise(661794 / 22050), 22050)
        write_wav(tmp_path / domain / "short.wav", noise(660000 / 22050), 22050)
        write_wav(tmp_path / domain / "tiny.wav", noise(6.5), 22050)
    summary = preprocessing.preprocess({"pop": tmp_path / "pop", "jazz": tmp_path / "jazz"},
                                             tmp_path / "out", REP, val_fraction=0.0)
    # (1 + samples // 256) // 512 whole chunks; the tail is dropped: 5 + 5 + 1
    assert summary["pop"]["train_chunks"] == summary["jazz"]["train_chunks"] == 11
    shapes = {np.load(path).shape for path in (tmp_path / "out" / "pop_train").glob("*.npy")}
    assert shapes == {(512, 512)}


# 6. other sample rates and channel counts
@pytest.mark.parametrize("sample_rate", [11025, 44100])
def test_resampled_to_22050(tmp_path, sample_rate):
    path = write_wav(tmp_path / "song.wav", sine(7.0, sample_rate), sample_rate)
    audio = load_audio(path)
    assert audio.shape == (154350,)
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * 22050 / len(audio) - 440.0) < 1.0  # still A4 after resampling


def test_stereo_24_bit_is_downmixed(tmp_path):
    left = sine(3.0, amplitude=0.8)
    path = write_wav(tmp_path / "stereo.wav", np.stack([left, np.zeros_like(left)], axis=1), 22050, "PCM_24")
    audio = load_audio(path)
    assert audio.shape == (66150,) and abs(np.abs(audio).max() - 0.4) < 1e-3


# 7. the normalisation round trip
def test_identity_generator_keeps_pitch_and_loudness():
    source = sine(6.0, amplitude=0.5)
    converted = convert_audio(IdentityGenerator(), source, REP, n_iter=32)
    spectrum = np.abs(np.fft.rfft(converted))
    assert abs(np.argmax(spectrum) * 22050 / len(converted) - 440.0) <= 22050 / len(converted)
    rms_db = 20 * np.log10(np.sqrt(np.mean(converted**2)) / np.sqrt(np.mean(source**2)))
    assert abs(rms_db) < 1.0
    assert spectral_convergence(stft(source).abs(), stft(converted).abs()) < -30.0


# 8. loud output
def test_writer_never_clips(tmp_path):
    path = tmp_path / "loud.wav"
    gain = write_audio(path, sine(1.0, amplitude=1.8), 22050, {"tool": "test"})
    audio, _ = sf.read(str(path))
    assert gain == pytest.approx(0.99 / 1.8, rel=1e-3)
    assert 0.98 < np.abs(audio).max() <= 0.99


def test_convert_reports_the_gain_of_a_loud_generator(tmp_path, checkpoint, capsys):
    state = load_checkpoint(checkpoint)
    last_bias = [name for name in state["generator_ab"] if name.endswith("bias")][-1]
    state["generator_ab"][last_bias].fill_(10.0)  # tanh -> +1 everywhere: every bin at 0 dB
    loud = tmp_path / "loud.pt"
    save_checkpoint(loud, {key: value for key, value in state.items() if key != "format"})
    song = write_wav(tmp_path / "song.wav", noise(3.0), 22050)
    assert convert.main([str(song), "--checkpoint", str(loud)]) == 0
    audio, _ = sf.read(str(tmp_path / "song_jazz.wav"))
    assert np.abs(audio).max() <= 0.99 + 1e-4 and len(audio) == 66150
    assert "to avoid clipping" in capsys.readouterr().out


# 9. resume restores everything (small_chunks: conftest.py)
def small_run(data: Path, run: Path, *extra: str) -> int:
    return train.main(["--data", str(data), "--checkpoint-dir", str(run / "checkpoints"), "--samples-dir",
                       str(run / "samples"), "--width", "4", "--n-blocks", "1", "--pool-size", "3", "--epochs", "4",
                       *extra])


@pytest.mark.slow
def test_resume_restores_models_optimisers_pools_and_rng(small_chunks, tmp_path, capsys):
    assert small_run(small_chunks, tmp_path / "straight") == 0
    assert small_run(small_chunks, tmp_path / "split", "--stop-after", "2") == 0
    assert load_checkpoint(tmp_path / "split" / "checkpoints" / "latest.pt")["epoch"] == 2
    assert small_run(small_chunks, tmp_path / "split", "--resume") == 0
    assert "at epoch 3 of 4" in capsys.readouterr().out
    straight = load_checkpoint(tmp_path / "straight" / "checkpoints" / "latest.pt")
    split = load_checkpoint(tmp_path / "split" / "checkpoints" / "latest.pt")
    for name in ("generator_ab", "generator_ba", "discriminator_a", "discriminator_b"):
        for key, value in straight[name].items():
            torch.testing.assert_close(split[name][key], value, rtol=0, atol=1e-6)
    assert len(split["image_pool_a"]["images"]) == 3
    assert [row["loss_cycle"] for row in split["history"]] == pytest.approx(
        [row["loss_cycle"] for row in straight["history"]], abs=1e-6)
    assert split["scheduler_g"]["last_epoch"] == 4


# 10. a crash while saving
def test_crash_between_write_and_rename_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "latest.pt"
    save_checkpoint(path, {"epoch": 1, "weights": torch.ones(3)})

    def crash(*args):
        raise KeyboardInterrupt("killed between write and rename")

    monkeypatch.setattr(outputs.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"epoch": 2, "weights": torch.zeros(3)})
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["latest.pt"]


@pytest.mark.slow
def test_kill_9_during_saves_leaves_a_loadable_checkpoint(tmp_path):
    path = tmp_path / "latest.pt"
    script = (f"import sys, torch; sys.path.insert(0, {str(ROOT)!r}); from pop2jazz.checkpoint import save_checkpoint\n"
              f"epoch = 0\nwhile True:\n    epoch += 1\n"
              f"    save_checkpoint({str(path)!r}, {{'epoch': epoch, 'weights': torch.full((4_000_000,), epoch)}})\n")
    process = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.time() + 60
    while not path.exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.7)
    process.send_signal(signal.SIGKILL)
    process.wait()
    state = load_checkpoint(path)
    assert state["epoch"] >= 1 and bool((state["weights"] == state["epoch"]).all())


# 11. non-finite data and losses
def test_non_finite_audio_is_skipped(tmp_path):
    audio = noise(7.0)
    audio[100] = np.inf
    path = write_wav(tmp_path / "inf.wav", audio, 22050, "FLOAT")
    with pytest.raises(AudioError, match="inf.wav: holds NaN or infinite"):
        load_audio(path)


def test_loader_rejects_a_non_finite_chunk_by_name(small_chunks, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(small_chunks, data)
    bad = data / "jazz_train" / "bad_000.npy"
    np.save(bad, np.full((512, 128), -np.inf, np.float16))
    assert small_run(data, tmp_path / "run") == 1
    assert str(bad) in capsys.readouterr().err
    assert not (tmp_path / "run" / "checkpoints" / "latest.pt").exists()


def test_nan_loss_stops_without_touching_the_last_checkpoint(small_chunks, tmp_path, monkeypatch, capsys):
    assert small_run(small_chunks, tmp_path, "--stop-after", "1") == 0
    saved = (tmp_path / "checkpoints" / "latest.pt").read_bytes()
    monkeypatch.setattr(ChunkFolder, "__getitem__", lambda self, index: np.full(self.shape, np.nan, np.float32))
    assert small_run(small_chunks, tmp_path, "--resume") == 2
    assert "non-finite loss at epoch 2, step 1" in capsys.readouterr().err
    assert (tmp_path / "checkpoints" / "latest.pt").read_bytes() == saved


# 12. checkpoints are untrusted files
class Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


MARKER = Path("/tmp/pop2jazz_exploit_ran")


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # the plain pickle below is protocol 4
def test_crafted_checkpoint_is_refused_without_running_code(tmp_path, checkpoint, capsys):
    MARKER.unlink(missing_ok=True)
    crafted = tmp_path / "crafted.pt"
    torch.save({"format": 1, "payload": Exploit()}, crafted)
    with pytest.raises(ValueError, match="refused to load"):
        load_checkpoint(crafted)
    assert convert.main([str(tmp_path / "x.wav"), "--checkpoint", str(crafted)]) == 1
    assert "refused to load" in capsys.readouterr().err
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(ValueError):
        load_checkpoint(plain)
    assert not MARKER.exists()
    assert load_checkpoint(checkpoint)["epoch"] == 2  # a genuine one loads


# 13. paths
def test_convert_never_writes_over_its_input(tmp_path, checkpoint, capsys):
    song = write_wav(tmp_path / "song.wav", noise(3.0), 22050)
    original = song.read_bytes()
    link = tmp_path / "link.wav"
    link.symlink_to(song)
    for target in (song, link, tmp_path / "." / "song.wav"):
        assert convert.main([str(song), "--checkpoint", str(checkpoint), "-o", str(target), "--overwrite"]) == 1
        assert "refusing to write over it" in capsys.readouterr().err
    assert song.read_bytes() == original
    nested = tmp_path / "new" / "folder" / "out.wav"
    assert convert.main([str(song), "--checkpoint", str(checkpoint), "-o", str(nested)]) == 0
    assert sf.info(str(nested)).frames == 66150


def test_unwritable_output_is_a_clear_error(tmp_path, checkpoint, capsys, monkeypatch):
    song = write_wav(tmp_path / "song.wav", noise(3.0), 22050)
    (tmp_path / "file").write_text("not a folder")
    assert convert.main([str(song), "--checkpoint", str(checkpoint), "-o", str(tmp_path / "file" / "o.wav")]) == 1
    assert "cannot write" in capsys.readouterr().err

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("pop2jazz.output_files.tempfile.mkstemp", read_only)
    assert convert.main([str(song), "--checkpoint", str(checkpoint), "-o", str(tmp_path / "ro" / "o.wav")]) == 1
    error = capsys.readouterr().err
    assert f"no permission to write {tmp_path / 'ro'}" in error and "Traceback" not in error
