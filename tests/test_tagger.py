"""The PyTorch port of musicnn's MSD tagger (pop2jazz/tagger.py) against the TensorFlow original's outputs, recorded
by experiments/convert_musicnn.py in tests/fixtures/musicnn_reference.json; the level matching, the patches and
KID. Needs no TensorFlow."""

from __future__ import annotations

import json

import librosa
import numpy as np
import pytest
import torch

from conftest import ROOT
from pop2jazz import tagger

REFERENCE = ROOT / "tests" / "fixtures" / "musicnn_reference.json"


@pytest.fixture(scope="module")
def judge() -> tagger.Tagger:
    return tagger.Tagger()


def test_the_weights_load_with_torch_alone(judge):
    saved = torch.load(tagger.WEIGHTS, map_location="cpu", weights_only=True)
    assert saved["tags"] == json.loads(REFERENCE.read_text())["tags"] and len(saved["tags"]) == 50
    assert {"jazz", "pop"} <= set(judge.tags)
    code = (ROOT / "pop2jazz" / "tagger.py").read_text()  # the port never imports TensorFlow or musicnn
    assert not {"import tensorflow", "from tensorflow", "import musicnn", "from musicnn"} & \
        {line.strip()[:len(prefix)] for line in code.splitlines() for prefix in ("import tensorflow", "from musicnn")}


@pytest.mark.slow
def test_the_port_matches_the_tensorflow_original_on_two_clips(judge, gtzan_mini):
    """The original's sigmoid outputs on all 50 tags and its penultimate layer, per 3 s patch, within 1e-3, from
    the audio files through the port's own front end (librosa.load at 16 kHz as musicnn's extractor, no level
    change, musicnn's non-overlapping patches)."""
    reference = json.loads(REFERENCE.read_text())
    assert len(reference["clips"]) == 2
    for clip, expected in reference["clips"].items():
        audio, _ = librosa.load(gtzan_mini / clip, sr=tagger.SAMPLE_RATE)
        patches = judge.patches(audio, tagger.SAMPLE_RATE, level=False, overlap=False)
        probabilities, embeddings = judge.tag(patches)
        assert probabilities.shape == np.shape(expected["probabilities"])
        np.testing.assert_allclose(probabilities, expected["probabilities"], rtol=0, atol=1e-3)
        np.testing.assert_allclose(embeddings, expected["penultimate"], rtol=0, atol=1e-3)
    jazz = np.mean(reference["clips"]["jazz/jazz.00000.wav"]["probabilities"], axis=0)
    pop = np.mean(reference["clips"]["pop/pop.00000.wav"]["probabilities"], axis=0)
    assert jazz[judge.jazz] > jazz[judge.pop] and pop[judge.pop] > pop[judge.jazz]  # the tags are the right way round


def test_the_front_end_is_librosas_melspectrogram():
    audio = np.random.default_rng(0).normal(0, 0.1, tagger.SAMPLE_RATE * 2).astype(np.float32)
    expected = np.log10(10000 * librosa.feature.melspectrogram(y=audio, sr=tagger.SAMPLE_RATE, n_fft=tagger.N_FFT,
                                                               hop_length=tagger.HOP, n_mels=tagger.N_MELS) + 1).T
    np.testing.assert_allclose(tagger.log_mel(audio).numpy(), expected, rtol=1e-4, atol=1e-4)


def test_every_chunk_is_heard_at_one_level(judge):
    rng = np.random.default_rng(1)
    audio = rng.normal(0, 0.3, 22050 * 6).astype(np.float32)
    leveled = tagger.at_level(audio)
    assert 20 * np.log10(np.sqrt(np.mean(leveled.astype(np.float64) ** 2))) == pytest.approx(tagger.LEVEL_DBFS,
                                                                                               abs=1e-3)
    assert not tagger.at_level(np.zeros(100)).any()
    loud, quiet = judge.figures([audio], 22050), judge.figures([audio * 0.01], 22050)
    np.testing.assert_allclose(loud.jazz, quiet.jazz, atol=1e-4)


def test_a_chunk_is_covered_by_patches():
    assert tagger.patch_starts(372) == [0, 185]  # a 5.94 s chunk at 16 kHz
    assert tagger.patch_starts(374, overlap=False) == [0, 187]
    assert tagger.patch_starts(186) == [] and tagger.patch_starts(187) == [0]


def test_kid_is_near_zero_for_one_distribution_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 16)), rng.normal(size=(200, 16))
    assert abs(tagger.kernel_inception_distance(a, b)) < 0.05
    assert tagger.kernel_inception_distance(a, b + 1.0) > 1.0
    x, y = rng.normal(size=(3, 4)), rng.normal(size=(4, 4))  # the unbiased estimate, written out
    k = lambda p, q: (p @ q / 4 + 1) ** 3  # noqa: E731
    xx = np.mean([k(x[i], x[j]) for i in range(3) for j in range(3) if i != j])
    yy = np.mean([k(y[i], y[j]) for i in range(4) for j in range(4) if i != j])
    xy = np.mean([k(p, q) for p in x for q in y])
    assert tagger.kernel_inception_distance(x, y) == pytest.approx(xx + yy - 2 * xy)
    assert np.isnan(tagger.kernel_inception_distance(x[:1], y))
