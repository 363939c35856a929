"""A conversion at full quality: at the song's own sample rate and channel count, with its own high band and its
stereo image, around the model's mono conversion.

The model hears and makes mono audio at its own rate (rep.sample_rate, 22050 Hz: 0-11.025 kHz). A song from a
library is 44.1 or 48 kHz stereo. `FullQualityMix` hands the model only what it hears and gives everything else of
the song back, for a song x with channels x_c at its own rate R (at least the model's: conversion.convert_file
brings a song below it up to it first, with spectrogram.resample_blocks):

    m     = mean of the channels (L + R) / 2       the mid: what the mono conversion (--mono) converts
    m_r   = down(m)                                 m at the model's rate: soxr VHQ, as read_audio_blocks resamples
    y_r   = the conversion of m_r                   conversion.convert_stream
    low   = up(m_r)                                 the band the model carries, back at R (soxr VHQ, linear phase:
                                                    it passes up to 10.0 kHz and stops above 10.8 kHz)
    y     = up(y_r)                                 the converted band at R
    g     = sqrt(energy of y / energy of low)       the conversion's gain, per frame of one model hop (11.6 ms),
                                                    smoothed over 9 frames (105 ms), interpolated per sample,
                                                    at most +12 dB; 1 where both are below -80 dBFS
    out_c = y + g (x_c - low)                       keep_high_band (the default)
    out_c = y + g up(down(x_c - m))                 without: the side signal's own 0-10 kHz band only

x_c - low = (m - low) + (x_c - m) is the song's high band, which is exactly what the model's band does not carry (the
mid less its own down-and-up resampled copy, a linear-phase high-pass complementary to the low band: the two
cross-fade over the resampler's 10.0-10.8 kHz transition band, no seam, nothing counted twice or lost), plus the
channel's side signal (+(L - R) / 2 for the left, -(L - R) / 2 for the right), both scaled by the gain the
conversion applied to the mid, so the high band follows the converted band's level and the stereo width survives.
With a generator that changes nothing, y = low and g = 1, so out_c = x_c: the pipeline itself loses nothing of the
song (the null test in tests/test_full_quality.py).

Streaming, as conversion.convert_stream: `push_source` takes the file's blocks as they are read (any sizes) and
returns m_r for the conversion; `push_converted` takes the converted blocks as convert_stream yields them (later: it
holds back a generator window and a Griffin-Lim block) and returns the output samples now final. The song's
blocks, their low band and the converted band wait in buffers until all three, and the gains of the frames around
them, are in: the buffers hold what convert_stream holds back (about 30 s of audio), whatever the song's length.
"""

from __future__ import annotations

import numpy as np

from pop2jazz.spectrogram import Representation, resampler

GAIN_FRAMES = 4  # frames on each side of a frame that smooth its gain: 9 frames, 105 ms at 22050 Hz
MAX_GAIN_DB = 12.0  # where the model makes a near-silent frame loud, its high band and side follow only this far
SILENCE_DB = -80.0  # mean square, dB of full scale, below which a frame's gain goes to 1 (0 dB)


class FullQualityMix:
    """The song at its own rate and channels around a mono conversion at rep.sample_rate (see the module docstring).

    push_source(block [samples, channels] at `sample_rate`) -> the mid at rep.sample_rate [samples'], for the
    conversion; finish_source() -> its last samples. push_converted(converted [samples'] at rep.sample_rate) -> the
    output samples now final [samples, channels] float32 at `sample_rate`; finish() -> the rest: as many samples in
    all as were pushed. `max_buffered`: the most song samples held at once.
    """

    def __init__(self, sample_rate: int, channels: int, rep: Representation, keep_high_band: bool = True):
        self.channels, self.keep_high_band = channels, keep_high_band
        self.hop = max(1, round(rep.hop_length * sample_rate / rep.sample_rate))  # samples per gain frame at R
        self.down, self.up_low, self.up_converted = (resampler(sample_rate, rep.sample_rate),
                                                     resampler(rep.sample_rate, sample_rate),
                                                     resampler(rep.sample_rate, sample_rate))
        if not keep_high_band:
            self.side_down = resampler(sample_rate, rep.sample_rate, channels)
            self.side_up = resampler(rep.sample_rate, sample_rate, channels)
        position = np.arange(1, 2 * GAIN_FRAMES + 2)
        self.weights = np.sin(np.pi * position / (2 * GAIN_FRAMES + 2)) ** 2  # Hann, all positive
        self.floor = self.weights.sum() * self.hop * 10 ** (SILENCE_DB / 10)
        self.max_gain = 10 ** (MAX_GAIN_DB / 20)
        self.source = np.zeros((0, channels), np.float32)
        self.side = np.zeros((0, channels), np.float32)  # the side's low band, without the high band only
        self.low, self.converted = np.zeros(0, np.float32), np.zeros(0, np.float32)
        self.first = 0  # song sample of row 0 of the buffers: the samples before it were returned
        self.pushed = 0  # song samples pushed
        self.energy = np.zeros((2, 0))  # per frame, from frame self.energy_first: [converted band, low band]
        self.energy_first = 0
        self.frames = 0  # frames whose energy is known
        self.max_buffered = 0

    def push_source(self, block: np.ndarray) -> np.ndarray:
        mid = block.mean(axis=1, dtype=np.float32)  # as read_audio_blocks mixes down
        mid_r = self.down.resample_chunk(mid)
        self.low = np.concatenate([self.low, self.up_low.resample_chunk(mid_r)])
        self.source = np.concatenate([self.source, block])
        if not self.keep_high_band:
            side = self.side_up.resample_chunk(self.side_down.resample_chunk(block - mid[:, None]))
            self.side = np.concatenate([self.side, side])
        self.pushed += len(block)
        self.max_buffered = max(self.max_buffered, len(self.source))
        return mid_r

    def finish_source(self) -> np.ndarray:
        mid_r = self.down.resample_chunk(np.zeros(0, np.float32), last=True)
        self.low = np.concatenate([self.low, self.up_low.resample_chunk(mid_r, last=True)])
        if not self.keep_high_band:
            side = self.side_down.resample_chunk(np.zeros((0, self.channels), np.float32), last=True)
            self.side = np.concatenate([self.side, self.side_up.resample_chunk(side, last=True)])
        return mid_r

    def push_converted(self, converted: np.ndarray) -> np.ndarray:
        self.converted = np.concatenate([self.converted, self.up_converted.resample_chunk(converted)])
        return self._emit(final=False)

    def finish(self) -> np.ndarray:
        self.converted = np.concatenate([self.converted, self.up_converted.resample_chunk(
            np.zeros(0, np.float32), last=True)])
        length = self.pushed - self.first  # down and up again can be a sample off: zeros at the end, or cut
        self.low, self.converted = (np.pad(part[:length], (0, max(0, length - len(part))))
                                    for part in (self.low, self.converted))
        self.side = np.pad(self.side[:length], ((0, max(0, length - len(self.side))), (0, 0)))
        return self._emit(final=True)

    def _measure(self, final: bool) -> None:
        """The energies of the frames now complete in both the converted and the low band (at the end: all)."""
        end = self.first + min(len(self.low), len(self.converted))
        frames = -(-end // self.hop) if final else end // self.hop
        if frames <= self.frames:
            return
        start = self.frames * self.hop - self.first
        parts = []
        for band in (self.converted, self.low):
            samples = np.zeros((frames - self.frames) * self.hop)
            piece = band[start: start + len(samples)]
            samples[: len(piece)] = piece
            parts.append((samples.reshape(-1, self.hop) ** 2).sum(axis=1))
        self.energy = np.concatenate([self.energy, np.stack(parts)], axis=1)
        self.frames = frames

    def _gains(self, first: int, last: int) -> np.ndarray:
        """Smoothed gains of frames first..last; frames outside the song count as silent."""
        low, high = first - GAIN_FRAMES, last + GAIN_FRAMES + 1
        energy = np.zeros((2, high - low))
        start, stop = max(low, self.energy_first), min(high, self.energy_first + self.energy.shape[1])
        energy[:, start - low: stop - low] = self.energy[:, start - self.energy_first: stop - self.energy_first]
        smooth = [np.convolve(row, self.weights, mode="valid") for row in energy]
        return np.minimum(np.sqrt((smooth[0] + self.floor) / (smooth[1] + self.floor)), self.max_gain)

    def _emit(self, final: bool) -> np.ndarray:
        self._measure(final)
        buffers = [self.source, self.low, self.converted] + ([] if self.keep_high_band else [self.side])
        end = self.first + min(map(len, buffers))
        if not final:  # a sample's gain needs the next frame's, and that one the GAIN_FRAMES after it
            end = min(end, (self.frames - GAIN_FRAMES - 2) * self.hop)
        count = end - self.first
        if count <= 0:
            return np.zeros((0, self.channels), np.float32)
        samples = np.arange(self.first, end)
        position = (samples + 0.5) / self.hop - 0.5  # in frames; frame k is centred on (k + 0.5) hop - 0.5
        first = max(0, int(np.floor(position[0])))
        last = min(self.frames - 1, int(np.floor(position[-1])) + 1)
        centres = (np.arange(first, last + 1) + 0.5) * self.hop - 0.5
        gain = np.interp(samples, centres, self._gains(first, last)).astype(np.float32)[:, None]
        rest = self.source[:count] - self.low[:count, None] if self.keep_high_band else self.side[:count]
        output = self.converted[:count, None] + gain * rest
        self.source, self.low, self.converted = self.source[count:], self.low[count:], self.converted[count:]
        self.side = self.side[count:]
        self.first = end
        keep_from = max(0, self.first // self.hop - 2 - GAIN_FRAMES)  # the frames later samples still need
        self.energy = self.energy[:, keep_from - self.energy_first:]
        self.energy_first = keep_from
        return output.astype(np.float32)
