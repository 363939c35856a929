"""Streaming conversion (conversion.convert_stream and convert_file) against the whole-song reference convert_audio."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import write_wav
from model_cyclegan import ResnetGenerator, init_weights
from pop2jazz.audio_files import AudioError
from pop2jazz.conversion import StreamingGriffinLim, convert_audio, convert_file, convert_stream
from pop2jazz.spectrogram import Representation, griffin_lim, load_audio, stft

REP = Representation()
SILENCE = slice(100_000, 160_000)  # 2.7 s of digital silence put inside the song


@pytest.fixture(scope="module")
def generator() -> torch.nn.Module:
    torch.manual_seed(0)
    return init_weights(ResnetGenerator(1, 8, 2)).eval()


@pytest.fixture(scope="module")
def song(gtzan_mini) -> np.ndarray:
    """A real pop clip (18.9 s: 5 generator windows, 6 Griffin-Lim blocks of 300 frames) with digital silence."""
    audio = load_audio(gtzan_mini / "pop" / "pop.00000.wav")
    audio[SILENCE] = 0.0
    return audio


def stream(generator, audio, n_iter, block_samples=30_011, block_frames=300) -> np.ndarray:
    """convert_stream over odd-sized blocks and short Griffin-Lim blocks, so every join is exercised."""
    blocks = [audio[i:i + block_samples] for i in range(0, len(audio), block_samples)]
    return np.concatenate(list(convert_stream(generator, blocks, REP, n_iter, block_frames=block_frames)))


def test_streaming_equals_whole_song_without_griffin_lim(generator, song):
    reference = convert_audio(generator, song, REP, n_iter=0)
    streamed = stream(generator, song, n_iter=0)
    assert streamed.shape == reference.shape == song.shape
    assert np.abs(streamed - reference).max() < 1e-6
    inside = slice(SILENCE.start + REP.n_fft, SILENCE.stop - REP.n_fft)  # frames all silent
    assert np.abs(streamed[inside]).max() == 0.0


def test_streaming_equals_whole_song_with_griffin_lim(generator, song):
    # Fast Griffin-Lim magnifies the last-bit differences of vectorised elementwise ops on blocks of other
    # sizes (1e-7 above) about 1.3 times per iteration: 8 iterations keep them near 1e-5.
    reference = convert_audio(generator, song, REP, n_iter=8)
    streamed = stream(generator, song, n_iter=8)
    assert streamed.shape == reference.shape
    assert np.abs(streamed - reference).max() < 1e-4
    error_db = 10 * np.log10(np.sum((streamed - reference) ** 2) / np.sum(reference ** 2))
    assert error_db < -90


def block_griffin_lim(magnitude, phase, n_iter, length, context=None) -> torch.Tensor:
    inversion = StreamingGriffinLim(REP, n_iter, block_frames=400)
    inversion.context = context or inversion.context
    parts = [inversion.push(magnitude[:, i:i + 157], phase[:, i:i + 157]) for i in range(0, magnitude.shape[1], 157)]
    return torch.cat([*parts, inversion.finish(length)])


def test_block_griffin_lim_equals_whole_song(song):
    """With griffin_lim_context frames each side, block-wise Griffin-Lim gives the whole-song samples.

    In float64, where the last-bit differences of elementwise ops stay near 1e-14 after 16 iterations.
    """
    excerpt = torch.from_numpy(song[:240_000]).double()  # 10.9 s: 938 frames, 3 blocks
    spectrum = stft(excerpt, REP)
    noise = torch.rand(spectrum.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    magnitude, phase = spectrum.abs() * (1 + 0.5 * noise), spectrum.angle()  # an inconsistent spectrogram
    reference = griffin_lim(magnitude, phase, 16, len(excerpt), REP)
    streamed = block_griffin_lim(magnitude, phase, 16, len(excerpt))
    assert streamed.shape == reference.shape
    torch.testing.assert_close(streamed, reference, rtol=0, atol=1e-10)
    too_little_context = block_griffin_lim(magnitude, phase, 16, len(excerpt), context=10)
    assert (too_little_context - reference).abs().max() > 1e-3


def test_short_song_is_padded_and_trimmed(generator, song):
    short = song[:50_000]  # 2.3 s, less than one 5.9 s chunk
    reference = convert_audio(generator, short, REP, n_iter=4)
    streamed = stream(generator, short, n_iter=4, block_samples=7_000)
    assert streamed.shape == (50_000,)
    assert np.abs(streamed - reference).max() < 1e-5


def test_convert_file_writes_what_convert_audio_gives(generator, song, tmp_path):
    samples_44k = np.repeat(song[:200_000], 2)  # a stereo 44.1 kHz file, to be mixed down and resampled
    path = write_wav(tmp_path / "song.wav", np.stack([samples_44k, 0.5 * samples_44k], axis=1), 44100, "FLOAT")
    output = tmp_path / "out" / "song_jazz.wav"
    seconds, gain = convert_file(generator, path, output, REP, n_iter=4, mono=True)  # convert.py --mono
    audio = load_audio(path, REP.sample_rate)
    reference = convert_audio(generator, audio, REP, n_iter=4)
    written, rate = sf.read(output, dtype="float32")
    assert rate == REP.sample_rate and sf.info(output).subtype == "PCM_16"
    assert seconds == pytest.approx(len(audio) / REP.sample_rate) and len(written) == len(audio)
    expected_gain = min(1.0, 0.99 / np.abs(reference).max())
    assert gain == pytest.approx(expected_gain, rel=1e-5)
    assert np.abs(written - reference * gain).max() < 1e-4  # 16-bit rounding is 1.5e-5
    assert [p.name for p in output.parent.iterdir()] == ["song_jazz.wav"]


def test_convert_file_leaves_nothing_on_bad_audio(generator, tmp_path):
    audio = np.full(300_000, 0.1, np.float32)
    audio[290_000] = np.nan  # after the first read block
    path = write_wav(tmp_path / "bad.wav", audio, REP.sample_rate, subtype="FLOAT")
    output = tmp_path / "out" / "bad_jazz.wav"
    with pytest.raises(AudioError, match="NaN"):
        convert_file(generator, path, output, REP, n_iter=0)
    assert list(output.parent.iterdir()) == []


@pytest.mark.slow  # bf16 is emulated, and slow, on CPUs without AVX512-BF16 or AMX
def test_bf16_on_the_cpu_stays_close_to_float32(generator, song):
    full = stream(generator, song, n_iter=0)
    blocks = [song[i:i + 30_011] for i in range(0, len(song), 30_011)]
    half = np.concatenate(list(convert_stream(generator, blocks, REP, 0, block_frames=300, bf16=True)))
    error_db = 10 * np.log10(np.sum((half - full) ** 2) / np.sum(full ** 2))
    assert -60 < error_db < -20  # bf16 did run (not bit-equal), and stayed 20 dB below the signal
