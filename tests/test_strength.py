"""convert.py --strength (and the page's slider, evaluate.py --strength): the bundled model at 0, 0.5 and 1 on real
songs. 0 is the null test, 0.5 lies half way in dB."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

import convert
from pop2jazz.checkpoint import BUNDLED_MODEL
from pop2jazz.conversion import AtStrength, convert_file, with_strength
from pop2jazz.dataset import cut_song
from pop2jazz.jobs import load_model
from pop2jazz.output_files import provenance_of
from pop2jazz.spectrogram import Representation, audio_to_image, load_audio
from tests.conftest import write_wav
from tests.test_full_quality import NULL_DB, RATE, stereo_song

REP = Representation()


@pytest.fixture(scope="module")
def bundled():
    if not BUNDLED_MODEL.is_file():
        pytest.skip(f"the bundled model {BUNDLED_MODEL} is not in this checkout")
    return load_model(BUNDLED_MODEL, "pop2jazz")


def test_strength_blends_the_db_image_linearly(bundled, gtzan_mini):
    chunk = cut_song(gtzan_mini / "pop" / "pop.00003.wav", REP)[0][:1].unsqueeze(1)  # [1, 1, 512, 512], real pop
    with torch.inference_mode():
        full = bundled.generator(chunk)
        assert torch.equal(with_strength(bundled.generator, 0.0)(chunk), chunk)
        assert torch.allclose(with_strength(bundled.generator, 0.5)(chunk), (chunk + full) / 2, atol=1e-6)
    assert (full - chunk).abs().mean() > 0.05  # the model does change the song: the blend has room to show
    assert with_strength(bundled.generator, 1.0) is bundled.generator
    assert isinstance(with_strength(bundled.generator, 0.25), AtStrength)
    with pytest.raises(ValueError, match="outside"):
        with_strength(bundled.generator, 1.5)


def test_strength_zero_gives_the_song_back_as_the_null_test_does(bundled, gtzan_mini, tmp_path):
    song = write_wav(tmp_path / "song.wav", stereo_song(gtzan_mini), RATE, "FLOAT")
    source, _ = sf.read(str(song), dtype="float32")
    convert_file(with_strength(bundled.generator, 0.0), song, tmp_path / "out.wav", REP)
    written, _ = sf.read(str(tmp_path / "out.wav"), dtype="float32")
    residual_db = 10 * np.log10(np.sum((written - source) ** 2) / np.sum(source ** 2))
    assert residual_db < NULL_DB  # as if there were no generator at all


def test_strength_zero_gives_a_song_at_the_models_rate_back(bundled, gtzan_mini, tmp_path):
    """The real GTZAN clip as it is (mono, 16-bit, 22050 Hz: no high band for full_quality to carry), so its top
    10-11 kHz, its Nyquist bin and its cells under the -100 dB floor must come through the spectrogram itself."""
    song = gtzan_mini / "pop" / "pop.00003.wav"
    source, rate = sf.read(str(song), dtype="float32")
    assert (rate, source.ndim) == (REP.sample_rate, 1)
    convert_file(with_strength(bundled.generator, 0.0), song, tmp_path / "out.wav", REP)
    written, _ = sf.read(str(tmp_path / "out.wav"), dtype="float32")
    residual_db = 10 * np.log10(np.sum((written - source) ** 2) / np.sum(source ** 2))
    assert residual_db < NULL_DB  # measured -75 dB (the 16-bit output's rounding); -40 dB with a zero Nyquist row


def test_convert_strength_half_moves_the_song_about_half_as_far(bundled, gtzan_mini, tmp_path, capsys):
    """convert.py at 0.5 and 1 on a real pop clip (mono, the model's rate): the mean change in dB of the written
    audio's spectrogram at 0.5 is 30-70 % of the full conversion's; the output's metadata says the strength."""
    song = gtzan_mini / "pop" / "pop.00003.wav"
    source = audio_to_image(load_audio(song, REP.sample_rate), REP)
    change = {}
    for strength in ("0.5", "1"):
        output = tmp_path / f"at_{strength}.wav"
        assert convert.main([str(song), "--checkpoint", str(BUNDLED_MODEL), "-o", str(output), "--strength",
                             strength]) == 0
        image = audio_to_image(load_audio(output, REP.sample_rate), REP)
        change[strength] = float((image - source).abs().mean())
    assert 0.3 < change["0.5"] / change["1"] < 0.7, change
    assert provenance_of(tmp_path / "at_0.5.wav")["strength"] == 0.5
    assert "strength" not in provenance_of(tmp_path / "at_1.wav")


def test_a_strength_outside_zero_to_one_is_refused(capsys):
    with pytest.raises(SystemExit) as stopped:
        convert.parse_args(["song.wav", "--strength", "1.5"])
    assert stopped.value.code == 2 and "--strength" in capsys.readouterr().err
