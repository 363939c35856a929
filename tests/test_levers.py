"""The level and data levers of train.py (issue 24): the reference level and conversion at it, random gain,
random windows, pitch and tempo changes, DiffAugment, the loud master of the holes test, and the A/B's rule."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import convert
import evaluate
import train
from conftest import TINY_RUN_FIXTURE
from pop2jazz.augment import diff_augment, pitch_time, random_gain, resample_image
from pop2jazz.channel import long_term_spectrum, loud_master, rms_dbfs
from pop2jazz.checkpoint import BUNDLED_MODEL, ModelConfig, generator_from, load_checkpoint
from pop2jazz.conversion import MAX_LEVEL_SHIFT_DB, AtReferenceLevel, convert_magnitude
from pop2jazz.dataset import ChunkFolder, RandomWindows, SongWindows, UnpairedChunks
from pop2jazz.errors import InputError
from pop2jazz.metrics import level_matched
from pop2jazz.spectrogram import (
    Representation,
    audio_to_image,
    db_to_image,
    image_level_db,
    image_to_db,
    image_units_per_db,
    load_audio,
    magnitude_to_image,
    split_chunks,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "experiments"))
import ab  # noqa: E402
import record_reference_level  # noqa: E402

REP = Representation()


class LevelSpy(torch.nn.Module):
    """The identity, remembering the level (dB) of every window it was given."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.levels = []

    def forward(self, images):
        self.levels += image_level_db(images, REP).flatten().tolist()
        return images


def song_chunks(path: Path, gain_db: float = 0.0) -> torch.Tensor:
    audio = load_audio(path, REP.sample_rate) * 10 ** (gain_db / 20)
    return split_chunks(audio_to_image(audio, REP), REP)


def test_the_level_of_an_image_is_its_mean_stft_power():
    image = db_to_image(torch.full((REP.n_bins, 64), -30.0), REP)
    assert float(image_level_db(image, REP)) == pytest.approx(-30.0 + 10 * np.log10(REP.n_bins / (REP.n_bins + 1)),
                                                              abs=1e-3)
    image[:, :32] = -1.0  # half the frames silent: half the power
    assert float(image_level_db(image, REP)) == pytest.approx(-33.01 - 0.0085, abs=0.01)


def test_the_generator_hears_every_window_at_the_reference_level(gtzan_mini):
    spy = LevelSpy()
    levelled = AtReferenceLevel(spy, -45.0, REP)
    quiet, loud = song_chunks(gtzan_mini / "pop" / "pop.00003.wav", -12), song_chunks(gtzan_mini / "pop" /
                                                                                         "pop.00003.wav", 6)
    assert float(image_level_db(loud, REP).mean() - image_level_db(quiet, REP).mean()) == pytest.approx(18, abs=0.5)
    for chunks in (quiet, loud):
        output = levelled(chunks[:, None])
        # the identity comes back as the song, at its own level: only cells pushed under the floor change
        kept = chunks[:, None] > -1 + 0.02 * 25
        assert torch.allclose(output[kept], chunks[:, None][kept], atol=1e-5)
    assert np.allclose(spy.levels, -45.0, atol=0.3)  # both the quiet and the loud song at the reference


@pytest.mark.slow
def test_a_level_matched_conversion_follows_the_songs_level(gtzan_mini):
    """With the bundled generator at the reference level, a song 10 dB louder converts to the same output 10 dB
    louder; without it, the generator makes something else of the louder song."""
    state = load_checkpoint(BUNDLED_MODEL)
    generator = generator_from(state, level_match=False)
    audio = load_audio(gtzan_mini / "pop" / "pop.00003.wav", REP.sample_rate)[: 2 * REP.chunk_samples]
    differences = {}
    for name, model in (("plain", generator), ("levelled", generator_from(state, level_match=True))):
        quiet, _ = convert_magnitude(model, audio, REP)
        loud, _ = convert_magnitude(model, audio * 10 ** 0.5, REP)
        quiet_db, loud_db = (image_to_db(magnitude_to_image(m, REP), REP) for m in (quiet, loud))
        audible = (quiet_db > REP.db_min + 30) & (loud_db < REP.db_max - 1)
        differences[name] = float((loud_db - quiet_db - 10)[audible].abs().mean())
    assert differences["levelled"] < 0.05 < 1.0 < differences["plain"]


def test_a_near_silent_window_is_raised_at_most_the_cap():
    spy = LevelSpy()
    image = db_to_image(torch.full((1, 1, REP.n_bins, 64), -95.0), REP)
    AtReferenceLevel(spy, -40.0, REP)(image)
    assert spy.levels[0] == pytest.approx(-95.0 + MAX_LEVEL_SHIFT_DB, abs=0.1)


def test_the_bundled_model_records_the_median_level_of_its_training_chunks():
    """pretrained/pop2jazz.pt was trained before runs recorded their reference: record_reference_level.py added
    the median level of data/bundled's 36 training chunks (-47.69 dB), and left level matching off."""
    config = ModelConfig.from_dict(load_checkpoint(BUNDLED_MODEL)["model"])
    assert config.reference_level_db == pytest.approx(-47.69, abs=0.01) and not config.level_match


def test_a_level_match_needs_a_recorded_reference():
    state = load_checkpoint(BUNDLED_MODEL)
    state["model"] = {key: value for key, value in state["model"].items() if key != "reference_level_db"}
    with pytest.raises(InputError, match="records no reference level"):
        generator_from(state, level_match=True, source="old.pt")
    assert not isinstance(generator_from(state), AtReferenceLevel)


def test_random_gain_moves_each_image_uniformly_and_keeps_silence():
    torch.manual_seed(0)
    images = db_to_image(torch.full((64, 1, 8, 8), -50.0), REP)
    images[:, :, 0] = -1.0
    gained = random_gain(images, 12.0, REP)
    shifts = image_to_db(gained[:, 0, 1:], REP) - (-50.0)
    assert torch.allclose(shifts, shifts[:, :1, :1].expand_as(shifts), atol=1e-4)  # one gain per image
    assert shifts.abs().max() <= 12.0 + 1e-4 and shifts.std() > 4  # spread over +-12 dB
    assert (gained[:, :, 0] == -1.0).all()
    assert random_gain(images, 0.0, REP) is images


def test_pitch_and_tempo_move_a_tone_and_an_onset_where_the_factors_say():
    audio = np.zeros(REP.chunk_samples, np.float32)
    onset = 200 * REP.hop_length
    time = np.arange(REP.chunk_samples - onset) / REP.sample_rate
    audio[onset:] = 0.5 * np.sin(2 * np.pi * 440.0 * time)
    image = split_chunks(audio_to_image(audio, REP), REP)[:1, None]
    pitch, tempo = torch.tensor([2 ** (2 / 12)]), torch.tensor([1.08])
    moved = resample_image(image, pitch, tempo)[0, 0]
    peak = int(moved[:, -100:].mean(dim=1).argmax())
    assert peak * REP.sample_rate / REP.n_fft == pytest.approx(440.0 * 2 ** (2 / 12), abs=22)  # within one bin
    middle = (REP.chunk_frames - 1) / 2
    first_loud = int(torch.nonzero(moved.amax(dim=0) > -0.5)[0])
    assert first_loud == pytest.approx(middle + (200 - middle) / 1.08, abs=3)
    assert pitch_time(image, 0.0, 0.0) is image
    torch.manual_seed(0)
    assert pitch_time(image.expand(4, -1, -1, -1), 2.0, 0.08).shape == (4, 1, REP.n_bins, REP.chunk_frames)


def test_diffaugment_is_random_differentiable_and_keeps_the_shape():
    torch.manual_seed(0)
    images = (torch.rand(4, 1, 64, 128) * 1.6 - 0.8).requires_grad_()
    augmented = diff_augment(images, REP)
    assert augmented.shape == images.shape
    augmented.sum().backward()
    assert images.grad.abs().sum() > 0  # the generator learns through it
    silent = (augmented == -1.0).float().mean().item()
    assert 0.25 < silent < 0.6  # two cut-outs of a quarter each, the frames shifted in
    assert not torch.equal(diff_augment(images, REP), diff_augment(images, REP))
    silence = torch.full((8, 1, 64, 128), -1.0)
    assert torch.equal(diff_augment(silence, REP), silence)  # its gain is spectrogram.shift_db's: silence stays


def test_the_level_control_keeps_silence_silent():
    """metrics.level_matched at +6 dB: every sounding cell 6 dB up (or clipped at full scale), the floor kept."""
    image = torch.linspace(-1.0, 1.0, 64 * 128).view(1, 64, 128)
    image[..., :16] = -1.0  # silent frames
    louder = level_matched(image, np.array([6.0]), REP)
    sounding = image > -1.0
    assert torch.equal(louder[~sounding], image[~sounding])
    expected = (image + 6.0 * image_units_per_db(REP)).clamp(max=1.0)
    torch.testing.assert_close(louder[sounding], expected[sounding])


def test_random_windows_read_the_songs_at_any_offset(small_chunks):
    folder = ChunkFolder(small_chunks / "pop_train")
    songs = SongWindows(folder)
    longest = int(np.argmax(songs.frames))
    assert songs.frames[longest] >= 2 * folder.shape[1]
    first, second = (folder[index] for index in songs.chunks[longest][:2])
    assert np.array_equal(songs.window(longest, 100), np.concatenate([first[:, 100:], second[:, :100]], axis=1))
    assert np.array_equal(songs.window(longest, 0), first)
    jazz = ChunkFolder(small_chunks / "jazz_train")
    windows = RandomWindows(folder, jazz, seed=0)
    assert len(windows) == len(UnpairedChunks(folder, jazz, seed=0))
    a0, b0 = windows[0]
    assert a0.shape == b0.shape == (1, *folder.shape)
    assert torch.equal(windows[0][0], a0)  # the same draw for the same (seed, epoch, index)
    windows.set_epoch(1)
    assert not torch.equal(windows[0][0], a0)


def test_a_loud_master_is_at_minus_9_dbfs_and_denser(gtzan_mini):
    audio = load_audio(gtzan_mini / "pop" / "pop.00007.wav", REP.sample_rate)
    loud = loud_master(audio, REP)
    assert loud.shape == audio.shape and np.abs(loud).max() <= 1.0
    assert rms_dbfs(loud) == pytest.approx(-9.0, abs=0.1) and rms_dbfs(audio) < -15

    def crest_db(samples):
        return 20 * np.log10(np.abs(samples).max()) - rms_dbfs(samples)

    assert crest_db(loud) < crest_db(audio) - 3


def test_on_a_loud_master_the_blur_keeps_the_loud_cells_and_the_equaliser_turns_it_down(gtzan_mini):
    """The marks beside a conversion's loud-master holes: smearing in time moves no loud cell by 30 dB; the
    equaliser to the jazz's long-term spectrum brings this bright song, made a -9 dBFS master, down to the jazz's
    level, so every frame loses more than 12 dB, and darkens it enough to drop some loud cells outright."""
    jazz_db = np.mean([long_term_spectrum(chunk, REP) for index in range(3) for chunk in split_chunks(
        audio_to_image(load_audio(gtzan_mini / "jazz" / f"jazz.0000{index}.wav", REP.sample_rate), REP), REP)],
        axis=0)
    loud = loud_master(load_audio(gtzan_mini / "pop" / "pop.00009.wav", REP.sample_rate), REP)
    figures = evaluate.loud_baseline_holes(loud, REP, jazz_db)
    smeared, equalised = figures["smear_control"], figures["eq_baseline"]
    assert smeared["loud_cells_dropped"] < 0.01 and smeared["frames_losing"] < 0.01
    assert equalised["frames_losing"] > 0.9
    assert 0.05 < equalised["loud_cells_dropped"] < 0.5
    assert equalised["rms_dbfs"] == smeared["rms_dbfs"] == pytest.approx(-9.0, abs=0.1)


@pytest.mark.slow
def test_a_run_records_its_levers_and_the_training_chunks_median_level(small_chunks, tmp_path):
    flags = ["--level-match", "--random-gain", "12", "--random-windows", "--pitch-shift", "2", "--time-stretch",
             "0.08", "--diffaugment"]
    assert train.main(["--data", str(small_chunks), "--width", "4", "--n-blocks", "1", "--pool-size", "1",
                       "--epochs", "1", "--steps-per-epoch", "1", "--griffin-lim-iters", "1", "--checkpoint-dir",
                       str(tmp_path / "c"), "--samples-dir", str(tmp_path / "s"), *flags]) == 0
    state = load_checkpoint(tmp_path / "c" / "latest.pt")
    config = ModelConfig.from_dict(state["model"])
    assert (config.level_match, config.random_gain_db, config.random_windows, config.pitch_shift_semitones,
            config.time_stretch, config.diffaugment) == (True, 12.0, True, 2.0, 0.08, True)
    folders = [ChunkFolder(small_chunks / name) for name in ("pop_train", "jazz_train")]
    levels = [float(image_level_db(folder[i], REP)) for folder in folders for i in range(len(folder))]
    assert config.reference_level_db == pytest.approx(np.median(levels), abs=1e-4)
    assert isinstance(generator_from(state), AtReferenceLevel)


def test_the_ab_rule_asks_for_the_tagger_chroma_holes_and_checkerboard():
    def row(variant, seed, jazz, share, holes=0.01, chroma=0.9, checkerboard=10.0):
        return {"variant": variant, "seed": seed, "tagger_jazz": jazz, "tagger_jazz_over_pop": share,
                "chroma_similarity": chroma, "checkerboard_db": checkerboard, "holes_loud": holes}

    base = [row("baseline", 0, 0.30, 0.5), row("baseline", 1, 0.34, 0.6)]
    assert ab.verdicts(base + [row("x", 0, 0.45, 0.8), row("x", 1, 0.47, 0.9)]) == {"x": "wins"}
    assert ab.verdicts(base + [row("x", 0, 0.34, 0.8), row("x", 1, 0.35, 0.9)])["x"].startswith("no (P(jazz)")
    loud = ab.verdicts(base + [row("x", 0, 0.45, 0.8, holes=0.05), row("x", 1, 0.47, 0.9, holes=0.05)])
    assert "loud-master holes 5.0%" in loud["x"]
    assert "chroma 0.80" in ab.verdicts(base + [row("x", 0, 0.45, 0.8, chroma=0.8),
                                                row("x", 1, 0.47, 0.9, chroma=0.8)])["x"]
    assert "checkerboard raised" in ab.verdicts(base + [row("x", 0, 0.45, 0.8, checkerboard=13),
                                                        row("x", 1, 0.47, 0.9, checkerboard=13)])["x"]


def test_ab_bf16_sets_every_runs_precision_and_refuses_the_precision_variants():
    assert ab.parse_args(["--runs", "baseline:0,level_and_gain:1", "--bf16"]).bf16
    with pytest.raises(SystemExit):
        ab.parse_args(["--runs", "baseline:0,float32:0", "--bf16"])


@pytest.mark.slow
def test_convert_level_match_says_so_and_an_old_checkpoint_names_the_script(gtzan_mini, tmp_path, capsys):
    song = gtzan_mini / "pop" / "pop.00003.wav"
    assert convert.main([str(song), "-o", str(tmp_path / "out.wav"), "--level-match", "--griffin-lim-iters",
                         "1"]) == 0
    assert "every window at its reference level (-47.7 dB)" in capsys.readouterr().out
    assert convert.main([str(song), "-o", str(tmp_path / "old.wav"), "--checkpoint", str(TINY_RUN_FIXTURE),
                         "--level-match"]) == 1
    assert "experiments/record_reference_level.py" in capsys.readouterr().err
    assert not (tmp_path / "old.wav").exists()


def test_record_reference_level_adds_the_median_and_keeps_the_weights(small_chunks, tmp_path):
    output = tmp_path / "with_reference.pt"
    args = record_reference_level.parse_args(["--checkpoint", str(TINY_RUN_FIXTURE), "--data", str(small_chunks),
                                              "-o", str(output)])
    assert record_reference_level.record(args) == 0
    before, after = load_checkpoint(TINY_RUN_FIXTURE), load_checkpoint(output)
    folders = [ChunkFolder(small_chunks / name) for name in ("pop_train", "jazz_train")]
    assert after["model"]["reference_level_db"] == pytest.approx(train.reference_level(folders))
    assert {**after["model"], "reference_level_db": None} == {**before["model"], "reference_level_db": None}
    assert all(torch.equal(before["generator_ab"][key], after["generator_ab"][key]) for key in before["generator_ab"])
    with pytest.raises(FileExistsError):  # a copy never replaces a file that is there
        record_reference_level.record(args)
