"""End to end on the real shared clips: preprocess -> train a tiny CycleGAN -> resume -> convert a song."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

import audio_preprocessing
import convert
import train
from conftest import TINY_MODEL
from model_cyclegan import PatchDiscriminator, ResnetGenerator
from pop2jazz.checkpoint import load_checkpoint
from pop2jazz.spectrogram import (
    Representation,
    audio_to_image,
    image_to_magnitude,
    istft,
    load_audio,
    spectral_convergence,
    stft,
)

REP = Representation()
ROUND_TRIP_DB = -35.0  # measured -39.8 dB (pop.00000) and -63.9 dB (jazz.00003): the Nyquist bin and -100 dB floor


def test_representation_is_512_by_512_and_6_seconds():
    assert (REP.sample_rate, REP.n_fft, REP.hop_length, REP.n_bins, REP.chunk_frames) == (22050, 1024, 256, 512, 512)
    assert REP.chunk_samples == 131072
    assert REP.chunk_seconds == pytest.approx(5.944, abs=1e-3)


def test_preprocess_real_clips_chunk_counts_and_values(dataset, gtzan_mini):
    for domain in ("pop", "jazz"):
        held_out = json.loads((dataset / f"{domain}_val" / "representation.json").read_text())
        trained = json.loads((dataset / f"{domain}_train" / "representation.json").read_text())
        assert held_out["representation"] == trained["representation"] == REP.to_dict()
        assert len(held_out["songs"]) == 1 and len(trained["songs"]) == 9  # 10 % of 10 songs, split by song
        assert not set(held_out["songs"]) & set(trained["songs"])
        for split, listing in (("val", held_out), ("train", trained)):
            for song, count in listing["songs"].items():
                frames = sf.info(song).frames  # already 22050 Hz mono
                expected = (1 + frames // REP.hop_length) // REP.chunk_frames
                assert count == expected >= 2, song  # the clips are 15.0-19.6 s: 2 or 3 chunks each
                stem = song.rsplit("/", 1)[1].removesuffix(".wav")
                files = sorted((dataset / f"{domain}_{split}").glob(f"{stem}_*.npy"))
                assert len(files) == count
        for path in (dataset / f"{domain}_train").glob("*.npy"):
            chunk = np.load(path)
            assert chunk.shape == (512, 512) and chunk.dtype == np.float16
            assert np.isfinite(chunk).all() and chunk.min() >= -1.0 and chunk.max() <= 1.0
            assert chunk.max() > -0.5  # music, not the silence floor


def test_round_trip_of_a_real_clip_through_the_representation(gtzan_mini):
    audio = load_audio(gtzan_mini / "pop" / "pop.00000.wav")
    spectrum = stft(audio)
    image = audio_to_image(audio).half().float()  # as stored on disk
    magnitude = image_to_magnitude(image)
    assert spectral_convergence(spectrum.abs(), magnitude) < ROUND_TRIP_DB
    rebuilt = istft(magnitude * torch.exp(1j * spectrum.angle()), len(audio))
    assert len(rebuilt) == len(audio)
    assert spectral_convergence(spectrum.abs(), stft(rebuilt).abs()) < ROUND_TRIP_DB


def test_paper_size_generator_and_patchgan_shapes():
    generator, discriminator = ResnetGenerator(), PatchDiscriminator()
    # the reference implementation's 11.378 M and 2.765 M for RGB, less the weights of 2 of 3 colour channels
    assert sum(p.numel() for p in generator.parameters()) == 11_378_179 - 2 * (7 * 7 * 64 * 2) - 2
    assert sum(p.numel() for p in discriminator.parameters()) == 2_764_737 - 4 * 4 * 64 * 2
    chunk = torch.rand(1, 1, 512, 512) * 2 - 1
    with torch.inference_mode():
        output = generator(chunk)
        scores = discriminator(chunk)
    assert output.shape == chunk.shape and output.abs().max() <= 1.0
    assert scores.shape == (1, 1, 62, 62)
    with pytest.raises(ValueError, match="multiples of 4"):
        generator(torch.zeros(1, 1, 510, 512))


def test_patchgan_sees_70_by_70_patches():
    discriminator = PatchDiscriminator(width=4, norm_layer=torch.nn.Identity)  # a norm would couple all pixels
    image = torch.randn(1, 1, 128, 128, requires_grad=True)
    discriminator(image)[0, 0, 5, 5].backward()
    rows, cols = np.nonzero(image.grad[0, 0].numpy())
    assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (70, 70)


def test_tiny_training_run_writes_checkpoint_samples_and_losses(tiny_run):
    state = load_checkpoint(tiny_run["checkpoints"] / "latest.pt")
    assert state["epoch"] == 2
    assert state["representation"] == REP.to_dict()
    model = dict(state["model"])
    assert -70 < model.pop("reference_level_db") < -30  # the training chunks' median level, in dB
    assert model == {"generator": "resnet", "width": 8, "n_blocks": 2, "disc_width": 8,
                     "image_size": [512, 512], "upsample": "transpose", "output": "direct",
                     "residual_scale": 0.5, "spectral_norm": False, "level_match": False, "random_gain_db": 0.0,
                     "random_windows": False, "pitch_shift_semitones": 0.0, "time_stretch": 0.0,
                     "diffaugment": False}
    assert [row["epoch"] for row in state["history"]] == [1, 2]
    assert all(np.isfinite(row[name]) and row[name] > 0 for row in state["history"] for name in train.LOSSES)
    assert state["optimizer_g"]["state"][0]["step"] == 6  # 2 epochs x 3 steps
    for epoch in (1, 2):
        wav = tiny_run["samples"] / f"epoch_{epoch:03d}.wav"
        info = sf.info(str(wav))
        assert info.samplerate == 22050 and info.frames > 15 * 22050  # the held-out song, 15-19.6 s
        assert (tiny_run["samples"] / f"epoch_{epoch:03d}.png").stat().st_size > 10_000
    lines = (tiny_run["samples"] / "losses.csv").read_text().splitlines()
    assert lines[0].split(",")[:6] == ["epoch", *train.LOSSES] and len(lines) == 3


def test_resume_continues_at_the_next_epoch(tiny_run, tmp_path, capsys):
    checkpoints, samples = tmp_path / "checkpoints", tmp_path / "samples"
    shutil.copytree(tiny_run["checkpoints"], checkpoints)
    shutil.copytree(tiny_run["samples"], samples)
    code = train.main(["--data", str(tiny_run["data"]), "--checkpoint-dir", str(checkpoints), "--samples-dir",
                       str(samples), "--resume", "--epochs", "3"])
    assert code == 0
    assert " 9/9 " in capsys.readouterr().err  # the bar counts the run's steps, from the 6 it had done
    state = load_checkpoint(checkpoints / "latest.pt")
    assert state["epoch"] == 3 and [row["epoch"] for row in state["history"]] == [1, 2, 3]
    assert state["model"]["width"] == 8  # the saved config, not the default 64
    assert state["optimizer_g"]["state"][0]["step"] == 9  # Adam's state carried on from step 6
    # the extended schedule (1 constant epoch, then 2 decaying: factors 1, 2/3, 1/3) applies from epoch 3 on
    assert [row["lr"] for row in state["history"]] == pytest.approx([2e-4, 1e-4, 2e-4 / 3])
    before = load_checkpoint(tiny_run["checkpoints"] / "latest.pt")["generator_ab"]
    assert any(not torch.equal(before[key], value) for key, value in state["generator_ab"].items())
    assert all((samples / f"epoch_{epoch:03d}.wav").is_file() for epoch in (1, 2, 3))


def test_resume_without_checkpoint_names_the_folder(dataset, tmp_path, capsys):
    empty = tmp_path / "nothing_here"
    assert train.main(["--data", str(dataset), "--checkpoint-dir", str(empty), "--resume", *TINY_MODEL]) == 1
    assert str(empty) in capsys.readouterr().err


def test_convert_real_pop_clip(tiny_run, gtzan_mini, tmp_path, capsys):
    song = tmp_path / "pop.00001.wav"
    shutil.copy(gtzan_mini / "pop" / "pop.00001.wav", song)
    before = hashlib.sha256(song.read_bytes()).hexdigest()
    checkpoint = str(tiny_run["checkpoints"] / "latest.pt")
    assert convert.main([str(song), "--checkpoint", checkpoint, "--griffin-lim-iters", "8"]) == 0
    output = tmp_path / "pop.00001_jazz.wav"
    converted, sample_rate = sf.read(str(output))
    original, _ = sf.read(str(song))
    assert sample_rate == 22050 and len(converted) == len(original)
    assert np.isfinite(converted).all() and np.sqrt(np.mean(converted**2)) > 1e-3
    assert np.abs(converted).max() <= 0.99 + 1e-4
    assert hashlib.sha256(song.read_bytes()).hexdigest() == before
    # a second run refuses to replace the output unless asked
    assert convert.main([str(song), "--checkpoint", checkpoint]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert convert.main([str(song), "--checkpoint", checkpoint, "--overwrite", "--direction", "jazz2pop",
                         "-o", str(output)]) == 0


def test_convert_without_checkpoint_says_how_to_get_one(tmp_path, capsys):
    assert convert.main([str(tmp_path / "song.wav"), "--checkpoint", str(tmp_path / "none.pt")]) == 1
    error = capsys.readouterr().err
    assert "train.py" in error and "--checkpoint" in error


def test_preprocess_missing_folder_says_where_to_put_songs(tmp_path, capsys):
    assert audio_preprocessing.main(["--pop", str(tmp_path / "pop"), "--jazz", str(tmp_path / "jazz"),
                                     "--output", str(tmp_path / "out")]) == 1
    assert "put your songs there" in capsys.readouterr().err
    (tmp_path / "pop").mkdir()
    assert audio_preprocessing.main(["--pop", str(tmp_path / "pop"), "--jazz", str(tmp_path / "jazz"),
                                     "--output", str(tmp_path / "out")]) == 1
    assert "holds no audio files" in capsys.readouterr().err


def test_sample_falls_back_to_a_held_out_chunk_when_the_song_moved(dataset, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(dataset, data)
    listing = data / "pop_val" / "representation.json"
    saved = json.loads(listing.read_text())
    saved["songs"] = {str(tmp_path / "moved.wav"): 3}
    listing.write_text(json.dumps(saved))
    assert train.main(["--data", str(data), "--checkpoint-dir", str(tmp_path / "c"), "--samples-dir",
                       str(tmp_path / "s"), "--epochs", "1", "--steps-per-epoch", "1", "--width", "4",
                       "--n-blocks", "1", "--griffin-lim-iters", "2"]) == 0
    assert sf.info(str(tmp_path / "s" / "epoch_001.wav")).frames == 511 * 256  # one chunk's 512 frames
