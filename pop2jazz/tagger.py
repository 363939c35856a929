"""A pretrained music tagger as a judge: musicnn's MSD_musicnn (Pons & Serra 2019), ported to PyTorch.

musicnn ("musicnn: pre-trained convolutional neural networks for music audio tagging", J. Pons and X. Serra,
ISMIR 2019 late-breaking demo, arXiv 1909.06654) was trained on the Million Song Dataset's 50 most common
last.fm tags, "jazz" and "pop" among them. Its TensorFlow checkpoint ships inside the `musicnn` 0.1.0 wheel (ISC
licence); experiments/convert_musicnn.py converted it once into pretrained/musicnn_msd.pt (a plain state_dict
and the tag list), and tests/test_tagger.py checks this port against the original's outputs. At run time the
tagger needs torch and librosa (for the mel filter bank) only.

- `log_mel`: musicnn's front end, librosa.feature.melspectrogram at 16 kHz (512-point FFT, Hann window, centred
  frames with zero padding, hop 256, 96 Slaney mel bands, power) then log10(10000 x + 1), in float32 (musicnn's
  own code casts to float16 first, which overflows to inf on loud songs; not copied).
- `Musicnn`: the network. Front end: batch norm of the log-mel; timbral convolutions (7 frames x 38 and x 67 mel
  bands, 204 filters each) and temporal convolutions (128, 64 and 32 frames x 1 band, 51 filters each), each
  ReLU, batch norm, max over frequency. Mid end: three 1-D convolutions over time of 64 filters (7 frames),
  the last two residual, dense connections. Back end: max and mean over time, batch norm, dense 200 (ReLU, batch
  norm: the penultimate layer, the embedding KID reads), dense 50, sigmoid. Batch norm always in inference
  mode (the network is built for eval and never trained here).
- `Tagger`: the network and the tags, loaded from the weights; `figures` of a set of audio chunks, each brought
  to LEVEL_DBFS RMS first (so loudness is not what it hears) and cut into 3 s patches of 187 frames.

A judge only: nothing in training may use it (tests/test_structure.py).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Sequence

import librosa
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from pop2jazz.channel import rms_dbfs

SAMPLE_RATE = 16000
N_FFT = 512
HOP = 256
N_MELS = 96
PATCH_FRAMES = 187  # 3 s: librosa.time_to_frames(3, sr=16000, n_fft=512, hop_length=256) + 1, as musicnn
LEVEL_DBFS = -20.0  # every chunk is brought to this RMS level (dB re full scale) before the tagger hears it
SILENCE_DBFS = -180.0  # an RMS of 1e-9 of full scale: digital silence, left as it is
BN_EPS = 1e-3  # tf.compat.v1.layers.batch_normalization's default
WEIGHTS = Path(__file__).resolve().parent.parent / "pretrained" / "musicnn_msd.pt"
TIMBRAL = {"f74": int(0.4 * N_MELS), "f77": int(0.7 * N_MELS)}  # mel bands of the timbral filters: 38, 67
TEMPORAL = {"s1": 128, "s2": 64, "s3": 32}  # frames of the temporal filters
FRONT_FILTERS = {"timbral": int(1.6 * 128), "temporal": int(1.6 * 32)}  # 204, 51
MID_FILTERS = 64
BACK_UNITS = 200
FRONT_FEATURES = 2 * FRONT_FILTERS["timbral"] + 3 * FRONT_FILTERS["temporal"]  # 561
MID_FEATURES = FRONT_FEATURES + 3 * MID_FILTERS  # 753


def mel_filters() -> torch.Tensor:
    """librosa's Slaney mel filter bank [N_MELS, N_FFT // 2 + 1] at SAMPLE_RATE, as melspectrogram uses it."""
    return torch.from_numpy(librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS)).float()


def log_mel(audio: np.ndarray | torch.Tensor, filters: torch.Tensor | None = None) -> torch.Tensor:
    """Mono audio [samples] at SAMPLE_RATE -> log10(10000 mel power + 1) [frames, N_MELS], frames = 1 + samples //
    HOP: librosa.feature.melspectrogram's defaults (periodic Hann window, centred frames padded with zeros,
    power 2) computed with torch.stft, in float32."""
    audio = torch.as_tensor(np.asarray(audio, dtype=np.float32))
    spectrum = torch.stft(audio, N_FFT, HOP, window=torch.hann_window(N_FFT), center=True, pad_mode="constant",
                          return_complex=True)
    power = spectrum.real ** 2 + spectrum.imag ** 2
    mel = (mel_filters() if filters is None else filters) @ power
    return torch.log10(10000.0 * mel + 1.0).T.contiguous()


def at_level(audio: np.ndarray, level_dbfs: float = LEVEL_DBFS) -> np.ndarray:
    """`audio` [samples] scaled to an RMS of `level_dbfs` dB re full scale (channel.rms_dbfs), float32; digital
    silence (under -180 dBFS) is left as it is."""
    audio = np.asarray(audio, dtype=np.float64)
    level = rms_dbfs(audio)
    if level < SILENCE_DBFS:
        return audio.astype(np.float32)
    return (audio * 10.0 ** ((level_dbfs - level) / 20.0)).astype(np.float32)


def patch_starts(frames: int, overlap: bool = True) -> list[int]:
    """First frames of the PATCH_FRAMES-long patches of a log-mel of `frames` frames. overlap=False: musicnn's
    own, 0, 187, 374, ... with the tail dropped. overlap=True: ceil(frames / 187) patches spread evenly from the
    first frame to the last, so the whole chunk is heard (a 5.94 s chunk: 372 frames, patches at 0 and 185).
    None when frames < PATCH_FRAMES."""
    if frames < PATCH_FRAMES:
        return []
    if not overlap:
        return list(range(0, frames - PATCH_FRAMES + 1, PATCH_FRAMES))
    count = math.ceil(frames / PATCH_FRAMES)
    return sorted({round(start) for start in np.linspace(0, frames - PATCH_FRAMES, count)})


class Musicnn(nn.Module):
    """musicnn's build_musicnn (models.py) with num_filt_frontend 1.6, num_filt_midend 64, num_units_backend 200:
    log-mel patches [batch, PATCH_FRAMES, N_MELS] -> (tag logits [batch, tags], penultimate [batch, 200]).

    Layer names follow the checkpoint's order (experiments/convert_musicnn.py maps them). Time is the image's
    height and frequency its width, as in the TensorFlow original (NHWC there, NCHW here)."""

    def __init__(self, tags: int = 50):
        super().__init__()
        self.input_bn = nn.BatchNorm2d(1, eps=BN_EPS)
        self.timbral = nn.ModuleList(nn.Conv2d(1, FRONT_FILTERS["timbral"], (7, bands)) for bands in TIMBRAL.values())
        self.timbral_bn = nn.ModuleList(nn.BatchNorm2d(FRONT_FILTERS["timbral"], eps=BN_EPS) for _ in TIMBRAL)
        self.temporal = nn.ModuleList(nn.Conv2d(1, FRONT_FILTERS["temporal"], (frames, 1))
                                      for frames in TEMPORAL.values())
        self.temporal_bn = nn.ModuleList(nn.BatchNorm2d(FRONT_FILTERS["temporal"], eps=BN_EPS) for _ in TEMPORAL)
        self.mid = nn.ModuleList([nn.Conv1d(FRONT_FEATURES, MID_FILTERS, 7), nn.Conv1d(MID_FILTERS, MID_FILTERS, 7),
                                  nn.Conv1d(MID_FILTERS, MID_FILTERS, 7)])
        self.mid_bn = nn.ModuleList(nn.BatchNorm1d(MID_FILTERS, eps=BN_EPS) for _ in range(3))
        self.pool_bn = nn.BatchNorm1d(2 * MID_FEATURES, eps=BN_EPS)
        self.dense = nn.Linear(2 * MID_FEATURES, BACK_UNITS)
        self.dense_bn = nn.BatchNorm1d(BACK_UNITS, eps=BN_EPS)
        self.output = nn.Linear(BACK_UNITS, tags)
        self.eval()

    def train(self, mode: bool = True) -> "Musicnn":
        """Always inference mode: the batch norms use the checkpoint's moving averages, and no dropout."""
        return super().train(False)

    def forward(self, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.input_bn(patches[:, None])  # [batch, 1, time, mel]
        features = []
        padded = F.pad(x, (0, 0, 3, 3))  # time only, for a 'same' result from a 'valid' convolution
        for conv, bn in zip(self.timbral, self.timbral_bn):
            features.append(bn(F.relu(conv(padded))).amax(dim=3))
        for conv, bn in zip(self.temporal, self.temporal_bn):
            frames = conv.kernel_size[0]  # TensorFlow's 'same': the odd frame of padding goes after
            features.append(bn(F.relu(conv(F.pad(x, (0, 0, (frames - 1) // 2, frames // 2))))).amax(dim=3))
        front = torch.cat(features, dim=1)  # [batch, 561, time]
        mid = [front]
        for index, (conv, bn) in enumerate(zip(self.mid, self.mid_bn)):
            out = bn(F.relu(conv(F.pad(mid[-1] if index else front, (3, 3)))))
            mid.append(out + mid[-1] if index else out)
        dense = torch.cat(mid, dim=1)  # [batch, 753, time]
        pooled = torch.stack([dense.amax(dim=2), dense.mean(dim=2)], dim=2).flatten(1)  # TF's [753, 2] flattened
        penultimate = self.dense_bn(F.relu(self.dense(self.pool_bn(pooled))))
        return self.output(penultimate), penultimate


@dataclasses.dataclass
class TaggerFigures:
    """What the tagger makes of a set of chunks: per 3 s patch, P(jazz), P(pop) and the penultimate embedding."""
    jazz: np.ndarray  # [patches]
    pop: np.ndarray  # [patches]
    embeddings: np.ndarray  # [patches, 200]
    chunks: int

    def summary(self) -> dict:
        """{"jazz_probability": mean P(jazz), "pop_probability": mean P(pop), "jazz_over_pop": share of patches
        with P(jazz) > P(pop), "patches", "chunks"}."""
        return {"jazz_probability": float(self.jazz.mean()) if len(self.jazz) else float("nan"),
                "pop_probability": float(self.pop.mean()) if len(self.pop) else float("nan"),
                "jazz_over_pop": float((self.jazz > self.pop).mean()) if len(self.jazz) else float("nan"),
                "patches": len(self.jazz), "chunks": self.chunks}


class Tagger:
    """The MSD musicnn tagger with its 50 tags, as a judge of audio chunks."""

    def __init__(self, path: Path = WEIGHTS, level_dbfs: float = LEVEL_DBFS):
        saved = torch.load(path, map_location="cpu", weights_only=True)
        self.tags: list[str] = list(saved["tags"])
        self.network = Musicnn(len(self.tags))
        self.network.load_state_dict(saved["state_dict"])
        self.filters = mel_filters()
        self.level_dbfs = level_dbfs
        self.jazz, self.pop = self.tags.index("jazz"), self.tags.index("pop")

    def patches(self, audio: np.ndarray, sample_rate: int, level: bool = True, overlap: bool = True
                ) -> torch.Tensor:
        """Mono audio [samples] at `sample_rate` -> log-mel patches [n, PATCH_FRAMES, N_MELS]: resampled to
        SAMPLE_RATE (librosa.resample, soxr_hq, as librosa.load), brought to `level_dbfs` RMS when `level`, cut
        at patch_starts."""
        audio = np.asarray(audio, dtype=np.float32)
        if sample_rate != SAMPLE_RATE:
            audio = librosa.resample(audio, orig_sr=sample_rate, target_sr=SAMPLE_RATE)
        if level:
            audio = at_level(audio, self.level_dbfs)
        mel = log_mel(audio, self.filters)
        starts = patch_starts(len(mel), overlap)
        if not starts:
            return torch.zeros(0, PATCH_FRAMES, N_MELS)
        return torch.stack([mel[start:start + PATCH_FRAMES] for start in starts])

    @torch.inference_mode()
    def tag(self, patches: torch.Tensor, batch: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """(tag probabilities [n, tags], penultimate embeddings [n, 200]) of log-mel patches [n, 187, 96]."""
        if len(patches) == 0:
            return np.zeros((0, len(self.tags))), np.zeros((0, BACK_UNITS))
        outputs = [self.network(part.float()) for part in patches.split(batch)]
        return (torch.sigmoid(torch.cat([logits for logits, _ in outputs])).double().numpy(),
                torch.cat([embedding for _, embedding in outputs]).double().numpy())

    def figures(self, chunks: Sequence[np.ndarray], sample_rate: int) -> TaggerFigures:
        """TaggerFigures of audio chunks (each [samples] at `sample_rate`), each leveled on its own."""
        patches = [self.patches(chunk, sample_rate) for chunk in chunks]
        probabilities, embeddings = self.tag(torch.cat(patches) if patches else torch.zeros(0, PATCH_FRAMES, N_MELS))
        return TaggerFigures(probabilities[:, self.jazz], probabilities[:, self.pop], embeddings, len(chunks))


def kernel_inception_distance(x: np.ndarray, y: np.ndarray) -> float:
    """KID (Binkowski et al. 2018, arXiv 1801.01401): the unbiased estimate of the squared maximum mean discrepancy
    between embeddings x [n, d] and y [m, d] under the cubic polynomial kernel k(a, b) = (a.b / d + 1)^3. 0 for
    samples of one distribution (it can come out a little below 0); NaN with fewer than 2 rows on a side."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    n, m, d = len(x), len(y), x.shape[1] if x.ndim == 2 else 0
    if n < 2 or m < 2:
        return float("nan")
    k_xx, k_yy, k_xy = ((a @ b.T / d + 1.0) ** 3 for a, b in ((x, x), (y, y), (x, y)))
    return float((k_xx.sum() - np.trace(k_xx)) / (n * (n - 1)) + (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
                 - 2.0 * k_xy.mean())
