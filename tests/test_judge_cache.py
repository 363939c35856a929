"""judge.cached_judge: evaluate.py fits the judge of a data split once, and a changed song, setting or judge code is
never answered from the cache. On 7-second excerpts of the real clips, so that each fit takes seconds."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import write_wav
from pop2jazz import judge
from pop2jazz.judge import JudgeCache, cached_judge
from pop2jazz.spectrogram import Representation, load_audio

REP = Representation()


@pytest.fixture(scope="module")
def excerpts(gtzan_mini, tmp_path_factory) -> dict[str, list]:
    """7 s of 3 pop and 3 jazz clips as WAVs: 2 of each to train on, 1 of each held out."""
    folder = tmp_path_factory.mktemp("excerpts")
    songs = {}
    for genre in ("pop", "jazz"):
        songs[genre] = [write_wav(folder / f"{genre}{index}.wav",
                                  load_audio(gtzan_mini / genre / f"{genre}.0000{index}.wav")[: 7 * 22050], 22050)
                        for index in range(3)]
    return songs


@pytest.fixture
def fits(monkeypatch) -> list[str]:
    """The names of the judge's fits that really ran, in order."""
    ran = []
    for name in ("train_genre_classifier", "channel_robustness"):
        real = getattr(judge, name)
        monkeypatch.setattr(judge, name, lambda *args, _real=real, _name=name, **kwargs: ran.append(_name)
                            or _real(*args, **kwargs))
    return ran


def judge_of(songs: dict[str, list], cache: JudgeCache):
    return cached_judge(songs["pop"][:2], songs["jazz"][:2], songs["pop"][2:], songs["jazz"][2:], REP, 0,
                        cache=cache)


def test_the_second_evaluation_of_a_split_reads_the_judge_it_fitted(excerpts, fits, tmp_path):
    cache = JudgeCache(tmp_path / "cache")
    classifier, robustness = judge_of(excerpts, cache)
    assert fits == ["train_genre_classifier", "channel_robustness"] and len(list(cache.folder.glob("*.pkl"))) == 2
    again, robustness_again = judge_of(excerpts, cache)
    assert fits == ["train_genre_classifier", "channel_robustness"]  # nothing fitted the second time
    features = np.random.default_rng(0).normal(size=(5, judge.N_FEATURES))
    np.testing.assert_array_equal(again.jazz_probability(features), classifier.jazz_probability(features))
    np.testing.assert_array_equal(again.jazz_spectrum_db, classifier.jazz_spectrum_db)
    assert again.summary() == classifier.summary() and robustness_again == robustness
    assert 0 <= classifier.jazz_probability(features).min() and robustness["chunks"] == {"pop": 1, "jazz": 1}


@pytest.mark.slow
def test_a_changed_song_or_seed_fits_the_judge_again(excerpts, fits, tmp_path):
    cache = JudgeCache(tmp_path / "cache")
    judge_of(excerpts, cache)
    changed = {genre: list(songs) for genre, songs in excerpts.items()}
    audio = load_audio(excerpts["pop"][0])
    changed["pop"][0] = write_wav(tmp_path / "louder.wav", 0.5 * audio, 22050)  # same song, 6 dB quieter
    judge_of(changed, cache)
    assert fits.count("train_genre_classifier") == 2
    assert JudgeCache.key("classifier", [excerpts["pop"]], seed=0) != JudgeCache.key("classifier",
                                                                                      [excerpts["pop"]], seed=1)
    held_out_swapped = {"pop": excerpts["pop"][:2] + excerpts["jazz"][2:], "jazz": excerpts["jazz"]}
    judge_of(held_out_swapped, cache)  # the same training songs: only the robustness is measured again
    assert fits.count("train_genre_classifier") == 2 and fits.count("channel_robustness") == 3


@pytest.mark.slow
def test_a_broken_or_unwritable_cache_costs_a_fit_and_nothing_else(excerpts, fits, tmp_path, monkeypatch):
    cache = JudgeCache(tmp_path / "cache")
    judge_of(excerpts, cache)
    for path in cache.folder.glob("*.pkl"):
        path.write_bytes(path.read_bytes()[:100])  # truncated, as by a full disk
    judge_of(excerpts, cache)
    assert fits.count("train_genre_classifier") == 2
    blocked = tmp_path / "a file"
    blocked.write_text("not a folder")
    judge_of(excerpts, JudgeCache(blocked / "cache"))
    assert fits.count("train_genre_classifier") == 3 and blocked.read_text() == "not a folder"
    monkeypatch.setenv(judge.CACHE_VARIABLE, "off")
    assert JudgeCache().folder is None
    monkeypatch.setenv(judge.CACHE_VARIABLE, str(tmp_path / "elsewhere"))
    assert JudgeCache().folder == tmp_path / "elsewhere"


def test_a_song_that_cannot_be_read_is_left_to_the_fit_to_name(tmp_path):
    assert JudgeCache.key("classifier", [[tmp_path / "missing.wav"]], seed=0) is None
    cache = JudgeCache(tmp_path / "cache")
    cache.put(None, "anything")
    assert cache.get(None) is None and not cache.folder.exists()
