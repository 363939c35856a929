"""The output at the song's own sample rate and channels: nothing of the song is lost by the pipeline
itself (the null test), the high band and the stereo image survive the bundled model, --mono is today's output,
and the full-quality path streams.

The test song is made here from two shared GTZAN clips (22050 Hz mono, nothing above 11 kHz): 12 s of
pop.00000 + 0.3 x pop.00001 on the left and pop.00001 + 0.3 x pop.00000 on the right (an inter-channel correlation
of 0.60), each resampled to 44.1 kHz with soxr (VHQ), plus a high band made of the song itself: its 5.5-11 kHz band
moved up by 5.5 kHz to 11-16.5 kHz (STFT bins shifted, 2048-point Hann window, hop 512) at -12 dB, so 0.24 % of its
energy (-26 dB) lies above 11 kHz, with the song's own envelope and transients; peak 0.8, 32-bit float WAV.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch

import convert
from conftest import write_wav
from pop2jazz.checkpoint import BUNDLED_MODEL
from pop2jazz.conversion import convert_file, convert_stream
from pop2jazz.full_quality import FullQualityMix
from pop2jazz.jobs import load_model
from pop2jazz.output_files import write_audio_blocks
from pop2jazz.spectrogram import Representation, load_audio, read_audio_blocks

REP = Representation()
RATE = 44100
SECONDS = 12.0
NULL_DB = -70.0  # the identity generator's residual, measured -77.5 dB (16-bit output included)


class IdentityGenerator(torch.nn.Module):
    """A generator that changes nothing: what the pipeline loses around it is all the null test sees."""

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # convert_file reads the device from the parameters

    def forward(self, x):
        return x


def stereo_song(gtzan_mini: Path) -> np.ndarray:
    """The 44.1 kHz stereo test song of the module docstring: [samples, 2] float32."""
    a, b = (load_audio(gtzan_mini / "pop" / f"pop.0000{index}.wav")[: int(SECONDS * 22050)] for index in (0, 1))
    song = soxr.resample(np.stack([a + 0.3 * b, b + 0.3 * a], axis=1), 22050, RATE, quality="VHQ")
    channels = torch.from_numpy(np.ascontiguousarray(song.T))
    window = torch.hann_window(2048)
    spectrum = torch.stft(channels, 2048, 512, window=window, return_complex=True)  # 21.5 Hz bins: 256 = 5.5 kHz
    moved = torch.zeros_like(spectrum)
    moved[:, 512:768] = spectrum[:, 256:512] * 10 ** (-12 / 20)
    high = torch.istft(moved, 2048, 512, window=window, length=channels.shape[1]).T.numpy()
    song = song + high
    return (0.8 * song / np.abs(song).max()).astype(np.float32)


@pytest.fixture(scope="module")
def song(gtzan_mini, tmp_path_factory) -> Path:
    return write_wav(tmp_path_factory.mktemp("song") / "song.wav", stereo_song(gtzan_mini), RATE, "FLOAT")


def energy_above(audio: np.ndarray, sample_rate: int, frequency: float = 11025.0) -> float:
    """Energy of all channels above `frequency` Hz (a whole-signal FFT)."""
    spectrum = np.fft.rfft(audio, axis=0)
    return float(np.sum(np.abs(spectrum[np.fft.rfftfreq(len(audio), 1 / sample_rate) > frequency]) ** 2))


def correlation(audio: np.ndarray) -> float:
    """Inter-channel (Pearson) correlation of a stereo signal [samples, 2]: 1 for mono, 0 for unrelated channels."""
    return float(np.corrcoef(audio.T)[0, 1])


def test_null_nothing_of_the_song_is_lost_by_the_pipeline(song, tmp_path):
    source, rate = sf.read(str(song), dtype="float32")
    output = tmp_path / "song_jazz.wav"
    seconds, gain = convert_file(IdentityGenerator(), song, output, REP)  # 32 Griffin-Lim iterations, high band kept
    written, written_rate = sf.read(str(output), dtype="float32")
    assert written_rate == rate == RATE and written.shape == source.shape and gain == 1.0
    assert seconds == pytest.approx(SECONDS)
    residual_db = 10 * np.log10(np.sum((written - source) ** 2) / np.sum(source**2))
    assert residual_db < NULL_DB
    assert energy_above(written, RATE) == pytest.approx(energy_above(source, RATE), rel=0.01)
    assert sf.info(str(output)).subtype == "PCM_16"


@pytest.fixture(scope="module")
def bundled():
    if not BUNDLED_MODEL.is_file():
        pytest.skip(f"the bundled model {BUNDLED_MODEL} is not in this checkout")
    return load_model(BUNDLED_MODEL, "pop2jazz")


def test_the_high_band_and_the_stereo_image_survive_the_bundled_model(song, bundled, tmp_path):
    source = sf.read(str(song), dtype="float32")[0]
    outputs = {}
    for name, options in (("full", {}), ("no_high_band", {"keep_high_band": False}), ("mono", {"mono": True})):
        path = tmp_path / f"{name}.wav"
        convert_file(bundled.generator, song, path, bundled.rep, **options)
        outputs[name] = sf.read(str(path), dtype="float32")
    full, rate = outputs["full"]
    assert rate == RATE and full.shape == source.shape
    # the song's high band, at the converted band's level (the model's gain moves it; measured 1.12)
    bandwidth = energy_above(full, RATE) / energy_above(source, RATE)
    assert 0.5 < bandwidth < 2.0
    assert energy_above(outputs["no_high_band"][0], RATE) / energy_above(source, RATE) < 1e-3  # measured 9e-5
    assert outputs["mono"][1] == 22050 and outputs["mono"][0].ndim == 1  # nothing above 11 kHz at all
    # the stereo image: correlation 0.60 in, measured 0.55 out (a mono output's is 1)
    assert abs(correlation(full) - correlation(source)) < 0.1
    width = [np.sum((x[:, 0] - x[:, 1]) ** 2) / np.sum((x[:, 0] + x[:, 1]) ** 2) for x in (source, full)]
    assert abs(10 * np.log10(width[1] / width[0])) < 1.0  # side to mid energy, measured +0.05 dB


def today(generator, song: Path, output: Path) -> None:
    """What convert_file wrote before full quality: the mono mix at the model's rate through convert_stream."""
    blocks = convert_stream(generator, read_audio_blocks(song, REP.sample_rate), REP, 32)
    write_audio_blocks(output, blocks, REP.sample_rate, {"tool": "today"})


def test_mono_is_todays_output_and_a_mono_22050_song_is_unchanged(song, bundled, gtzan_mini, tmp_path):
    checkpoint = ["--checkpoint", str(BUNDLED_MODEL)]
    assert convert.main([str(song), "-o", str(tmp_path / "mono.wav"), "--mono", *checkpoint]) == 0
    today(bundled.generator, song, tmp_path / "today.wav")
    mono, reference = (sf.read(str(tmp_path / name), dtype="int16") for name in ("mono.wav", "today.wav"))
    assert mono[1] == reference[1] == 22050 and np.array_equal(mono[0], reference[0])
    clip = gtzan_mini / "pop" / "pop.00003.wav"  # 22050 Hz mono, as every shared clip and the bundled example
    assert convert.main([str(clip), "-o", str(tmp_path / "default.wav"), *checkpoint]) == 0
    assert convert.main([str(clip), "-o", str(tmp_path / "clip_mono.wav"), "--mono", *checkpoint]) == 0
    assert (tmp_path / "default.wav").read_bytes() == (tmp_path / "clip_mono.wav").read_bytes()


def full_quality_stream(generator, audio: np.ndarray, block_samples: int, n_iter: int = 4
                        ) -> tuple[np.ndarray, FullQualityMix]:
    """convert_file's full-quality path on `audio` [samples, channels] at RATE, read in blocks of block_samples."""
    mix = FullQualityMix(RATE, audio.shape[1], REP)

    def mids():
        for start in range(0, len(audio), block_samples):
            yield mix.push_source(audio[start:start + block_samples])
        yield mix.finish_source()

    parts = [mix.push_converted(block) for block in convert_stream(generator, mids(), REP, n_iter)]
    return np.concatenate([*parts, mix.finish()]), mix


def test_the_full_quality_path_streams(song, bundled):
    source = sf.read(str(song), dtype="float32")[0]
    whole, _ = full_quality_stream(bundled.generator, source, len(source))
    blocks, _ = full_quality_stream(bundled.generator, source, 30_011)  # odd sizes: every join is exercised
    assert whole.shape == blocks.shape == source.shape
    assert np.abs(whole - blocks).max() < 1e-4
    # the buffers hold what convert_stream holds back (4 generator windows, a Griffin-Lim block, a read block:
    # about 50 s), whatever the song's length
    buffered = []
    for repeats in (5, 15):  # 60 s and 180 s
        long = np.tile(source, (repeats, 1))
        output, mix = full_quality_stream(IdentityGenerator(), long, 1 << 18, n_iter=0)
        assert output.shape == long.shape
        buffered.append(mix.max_buffered)
    assert max(buffered) < 60 * RATE  # measured 41.6 s and 47.6 s: the read blocks fall on windows differently


def test_a_song_below_the_models_rate_is_written_at_the_models_rate(gtzan_mini, tmp_path):
    a, b = (load_audio(gtzan_mini / "pop" / f"pop.0000{index}.wav", 11025)[: 8 * 11025] for index in (0, 1))
    song = write_wav(tmp_path / "low.wav", np.stack([a, b], axis=1), 11025, "FLOAT")  # 11025 Hz stereo
    output = tmp_path / "low_jazz.wav"
    seconds, gain = convert_file(IdentityGenerator(), song, output, REP)
    written, rate = sf.read(str(output), dtype="float32")
    assert rate == 22050 and written.shape == (16 * 11025, 2) and seconds == pytest.approx(8.0)
    expected = gain * soxr.resample(np.stack([a, b], axis=1), 11025, 22050, quality="VHQ")  # gain: below clipping
    assert 10 * np.log10(np.sum((written - expected) ** 2) / np.sum(expected**2)) < NULL_DB
