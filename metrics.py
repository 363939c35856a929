"""The measures of evaluate.py: how jazz is it, is it still the same song, how well does it invert?

Every measure here reads a spectrogram image (spectrogram.py: [n_bins, frames] in [-1, 1]) through
`image_to_magnitude`, so real chunks, generator outputs and the re-analysed audio of a conversion are all seen
through the same -100 dB floor and the classifier cannot tell them apart by the representation alone.

- `chunk_features`: per-chunk statistics of librosa features (MFCC mean and spread, log-mel spread), the classic
  genre-recognition front end of Tzanetakis & Cook 2002 in its common modern form. Chroma is left out on purpose:
  it is the content we want a conversion to keep, so the style classifier must not lean on it. So is the mean
  log-mel level, which mostly measures how loud a record was mastered.
- `GenreClassifier`: scikit-learn StandardScaler + LogisticRegression on those features, trained on the training
  split only, its accuracy measured by cross-validation grouped by song (chunks of one song are never on both
  sides of a fold).
- `chroma_similarity`: frame-wise cosine similarity of chroma, the content measure.
- `TransferRateLog`: the cheap part of evaluate.py that train.py --eval-every runs after an epoch.
- `checkerboard_power`: the energy at the image's highest spatial frequencies, where the stride-2 transposed
  convolutions of a generator leave their checkerboard pattern.
- `invert` and `inversion_quality`: audio from a generated magnitude by several phase methods, and the spectral
  convergence of each (evaluate.py and benchmark.py).
"""

from __future__ import annotations

import csv
import dataclasses
import time
from pathlib import Path
from typing import Sequence

import librosa
import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from data import song_of_chunk
from outputs import write_csv
from plots import save_curves
from spectrogram import Representation, griffin_lim, image_to_magnitude, spectral_convergence, stft

N_MELS = 64
N_MFCC = 20
N_CHROMA = 12
N_FEATURES = 2 * N_MFCC + N_MELS  # 104: MFCC mean and std, log-mel std
POP, JAZZ = 0, 1  # class labels
CV_FOLDS = 5


def log_mel(magnitude: np.ndarray, rep: Representation = Representation()) -> np.ndarray:
    """Log-mel power [N_MELS, frames] in dB re a full-scale bin, floored at rep.db_min, from |STFT|
    [n_fft//2 + 1, frames].

    librosa.feature.melspectrogram (Slaney mel scale and filter normalisation) and librosa.power_to_db.
    """
    reference = rep.magnitude_ref ** 2
    mel = librosa.feature.melspectrogram(S=magnitude ** 2, sr=rep.sample_rate, n_fft=rep.n_fft, n_mels=N_MELS)
    return librosa.power_to_db(mel, ref=reference, amin=reference * 10.0 ** (rep.db_min / 10.0), top_db=None)


def chroma(magnitude: np.ndarray, rep: Representation = Representation()) -> np.ndarray:
    """Chroma [12, frames] from |STFT| [n_fft//2+1, frames], each frame scaled to a maximum of 1 (0 when silent).

    librosa.feature.chroma_stft with the tuning fixed at A440: estimating it per clip could shift an input and its
    conversion by different amounts and blur the comparison.
    """
    return librosa.feature.chroma_stft(S=magnitude ** 2, sr=rep.sample_rate, n_fft=rep.n_fft, tuning=0.0,
                                       n_chroma=N_CHROMA)


def image_magnitude(image: np.ndarray | torch.Tensor, rep: Representation = Representation()) -> np.ndarray:
    """Spectrogram image [n_bins, frames] in [-1, 1] -> |STFT| [n_fft//2 + 1, frames] as float64 numpy."""
    return image_to_magnitude(torch.as_tensor(np.asarray(image, dtype=np.float32)), rep).double().numpy()


def chunk_features(image: np.ndarray | torch.Tensor, rep: Representation = Representation()) -> np.ndarray:
    """Genre features of one image [n_bins, frames] -> [N_FEATURES]: over frames, the mean and standard deviation
    of the MFCCs (librosa.feature.mfcc of the log-mel) and the standard deviation of the log-mel bands (dB)."""
    mel_db = log_mel(image_magnitude(image, rep), rep)
    mfcc = librosa.feature.mfcc(S=mel_db, n_mfcc=N_MFCC)
    return np.concatenate([mfcc.mean(axis=1), mfcc.std(axis=1), mel_db.std(axis=1)])


def level_db(image: np.ndarray | torch.Tensor, rep: Representation = Representation()) -> float:
    """Level of an image [n_bins, frames]: 10 log10 of its mean STFT power, in dB re a full-scale bin."""
    power = np.mean(image_magnitude(image, rep) ** 2) / rep.magnitude_ref ** 2
    return float(10.0 * np.log10(max(power, 1e-30)))


def level_changes(inputs: Sequence, outputs: Sequence, rep: Representation = Representation()) -> np.ndarray:
    """How much louder each output chunk is than its input chunk (images [n, n_bins, frames] each): level_db of
    the output minus level_db of the input, [n] in dB."""
    return np.array([level_db(b, rep) - level_db(a, rep) for a, b in zip(inputs, outputs)])


def level_matched(inputs: torch.Tensor, changes: np.ndarray, rep: Representation = Representation()
                  ) -> torch.Tensor:
    """The control for a judge that hears loudness: each input chunk [n, n_bins, frames] made louder or quieter
    by its conversion's level change (`changes` [n] dB, level_changes), and nothing else (a uniform dB shift,
    clipped to the image's range). Jazz in GTZAN is mostly older, quieter recordings, and the MFCCs' first
    coefficient follows level, so a generator that only turned the volume down would score above the unconverted
    pop; it must beat this control to show it does more."""
    scale = 2.0 / (rep.db_max - rep.db_min)  # image units per dB
    return torch.stack([(torch.as_tensor(a) + change * scale).clamp(-1.0, 1.0) for a, change in zip(inputs, changes)])


def features_of(images: Sequence, rep: Representation = Representation(), desc: str | None = None) -> np.ndarray:
    """`chunk_features` of each image in a sequence [n, n_bins, frames] -> [n, N_FEATURES]; tqdm when `desc`."""
    rows = [chunk_features(image, rep) for image in tqdm(images, desc=desc, unit="chunk", disable=desc is None,
                                                          leave=False)]
    return np.stack(rows) if rows else np.zeros((0, N_FEATURES))


def chroma_similarity(image_a: np.ndarray | torch.Tensor, image_b: np.ndarray | torch.Tensor,
                      rep: Representation = Representation()) -> float:
    """Mean cosine similarity of the chroma vectors of two images [n_bins, frames], frame by frame.

    1 = the same pitch classes at every moment. Frames silent in either image are left out; NaN when all are.
    Chroma is non-negative, so unrelated music still scores well above 0: compare with a floor from
    unrelated clips.
    """
    a, b = chroma(image_magnitude(image_a, rep), rep), chroma(image_magnitude(image_b, rep), rep)
    norms = np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0)
    sounding = norms > 0
    if not sounding.any():
        return float("nan")
    return float(np.mean((a * b).sum(axis=0)[sounding] / norms[sounding]))


@dataclasses.dataclass
class GenreClassifier:
    """A fitted jazz-vs-pop classifier and its grouped cross-validated accuracy (fraction of chunks right)."""

    pipeline: Pipeline
    cv_accuracy: float
    cv_accuracy_std: float
    cv_folds: int
    train_songs: dict[str, int]
    train_chunks: dict[str, int]

    def jazz_probability(self, features: np.ndarray) -> np.ndarray:
        """P(jazz) for each row of `features` [n, N_FEATURES] -> [n]."""
        return self.pipeline.predict_proba(features)[:, list(self.pipeline.classes_).index(JAZZ)]

    def is_jazz(self, features: np.ndarray) -> np.ndarray:
        """The predicted class of each row [n, N_FEATURES] == jazz -> bool [n]."""
        return self.pipeline.predict(features) == JAZZ

    def summary(self) -> dict:
        """The plain-value figures of the classifier, for the JSON report."""
        return {"cv_accuracy": self.cv_accuracy, "cv_accuracy_std": self.cv_accuracy_std, "cv_folds": self.cv_folds,
                "train_songs": self.train_songs, "train_chunks": self.train_chunks, "features": N_FEATURES,
                "model": "StandardScaler + LogisticRegression"}


def classifier_pipeline() -> Pipeline:
    """StandardScaler + L2-regularised logistic regression (scikit-learn defaults, C = 1)."""
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))


def train_genre_classifier(pop_train: Sequence, jazz_train: Sequence, rep: Representation = Representation(),
                           folds: int = CV_FOLDS, seed: int = 0, progress: bool = False) -> GenreClassifier:
    """Fit the classifier on the chunks of the training split: data.ChunkFolder-likes (item i -> image
    [n_bins, frames], `.files` -> the .npy paths, naming the song as audio_preprocessing.py does).

    Accuracy: sklearn cross_val_score with StratifiedGroupKFold over songs, min(folds, songs per domain) folds.
    Raises ValueError when a domain has fewer than 2 training songs (no held-out song to test on).
    """
    features, labels, groups, songs = [], [], [], {}
    for name, label, folder in (("pop", POP, pop_train), ("jazz", JAZZ, jazz_train)):
        images = [folder[index] for index in range(len(folder))]
        features.append(features_of(images, rep, f"{name} training features" if progress else None))
        groups += [f"{name}/{song_of_chunk(path)}" for path in folder.files]
        labels += [label] * len(images)
        songs[name] = len({group for group in groups if group.startswith(f"{name}/")})
    if min(songs.values()) < 2:
        raise ValueError(f"the genre classifier needs at least 2 training songs per domain, got {songs}: "
                         f"preprocess more songs with `uv run audio_preprocessing.py`")
    features, labels = np.concatenate(features), np.array(labels)
    cv = StratifiedGroupKFold(n_splits=min(folds, *songs.values()), shuffle=True, random_state=seed)
    scores = cross_val_score(classifier_pipeline(), features, labels, groups=groups, cv=cv)
    pipeline = classifier_pipeline().fit(features, labels)
    return GenreClassifier(pipeline, float(scores.mean()), float(scores.std()), cv.get_n_splits(), songs,
                           {"pop": int((labels == POP).sum()), "jazz": int((labels == JAZZ).sum())})


def transfer_figures(classifier: GenreClassifier, features: np.ndarray) -> dict:
    """{"jazz_rate": fraction of chunks classified jazz, "jazz_probability": mean P(jazz), "chunks": n}."""
    return {"jazz_rate": float(classifier.is_jazz(features).mean()),
            "jazz_probability": float(classifier.jazz_probability(features).mean()), "chunks": len(features)}


class TransferRateLog:
    """train.py --eval-every: the style transfer rate of generator_ab on the held-out pop chunks, per epoch.

    The classifier is trained once, here, on the training chunks, unless one is given. Each call runs the generator
    on each pop_val chunk on its own (no cross-fading, no Griffin-Lim: features of the generated magnitude, so
    figures differ a little from evaluate.py's) and rewrites `path` (CSV: epoch, transfer_rate, jazz_probability,
    chroma_similarity, pop_baseline), keeping the rows of earlier epochs so a resumed run continues its log, and
    its curves beside it (`path` with .png).
    """

    FIELDS = ("epoch", "transfer_rate", "jazz_probability", "chroma_similarity", "pop_baseline")

    def __init__(self, pop_train: Sequence, jazz_train: Sequence, pop_val: Sequence, path: Path,
                 rep: Representation = Representation(), classifier: GenreClassifier | None = None):
        self.rep, self.path = rep, Path(path)
        self.classifier = classifier or train_genre_classifier(pop_train, jazz_train, rep, progress=True)
        self.inputs = torch.from_numpy(np.stack([pop_val[index] for index in range(len(pop_val))]))
        self.baseline = transfer_figures(self.classifier, features_of(self.inputs, rep))["jazz_rate"]

    def __call__(self, generator: torch.nn.Module, epoch: int) -> dict:
        """Evaluate `generator` (left in the mode it was in) and log the row of `epoch`; returns the row."""
        device, was_training = next(generator.parameters()).device, generator.training
        generator.eval()
        with torch.inference_mode():
            outputs = torch.cat([generator(batch[:, None].to(device)).float()[:, 0].cpu()
                                 for batch in self.inputs.split(4)])
        generator.train(was_training)
        figures = transfer_figures(self.classifier, features_of(outputs, self.rep))
        similarity = np.mean([chroma_similarity(a, b, self.rep) for a, b in zip(self.inputs, outputs)])
        row = {"epoch": epoch, "transfer_rate": figures["jazz_rate"], "jazz_probability": figures["jazz_probability"],
               "chroma_similarity": float(similarity), "pop_baseline": self.baseline}
        rows = []
        if self.path.is_file():
            with open(self.path, newline="") as file:
                rows = [old for old in csv.DictReader(file) if int(old["epoch"]) < epoch]
        write_csv(self.path, [*rows, row], list(self.FIELDS))
        save_curves([*rows, row], self.FIELDS[1:], self.path.with_suffix(".png"),
                    "held-out pop chunks after conversion", "share / probability / similarity")
        tqdm.write(f"epoch {epoch}: {figures['jazz_rate']:.0%} of held-out pop chunks classified jazz after "
                   f"conversion (pop baseline {self.baseline:.0%}, mean P(jazz) {figures['jazz_probability']:.2f}), "
                   f"chroma similarity {similarity:.3f}")
        return row


INVERSIONS = {  # name -> what it is, for the report
    "librosa_griffinlim": "librosa.griffinlim, random initial phase",
    "source_phase_griffin_lim": "spectrogram.griffin_lim from the input's phase (convert.py)",
    "source_phase": "the input's phase alone (n_iter = 0)",
}


def invert(magnitude: torch.Tensor, source_phase: torch.Tensor, length: int, rep: Representation,
           n_iter: int = 32, seed: int = 0, repeats: int = 1, extra: dict | None = None
           ) -> dict[str, tuple[np.ndarray, float]]:
    """Audio from a generated |STFT| [n_fft//2 + 1, frames] by each of INVERSIONS -> {name: (audio [length], seconds)}.

    source_phase: the input's STFT phase in radians, same shape. librosa.griffinlim runs with its defaults
    (random initial phase, momentum 0.99) seeded by `seed`; both Griffin-Lims run `n_iter` iterations. Each
    method runs `repeats` times and keeps its least time (the least disturbed by other work); `extra`
    {name: function() -> audio} adds methods timed the same way.
    """
    runs = {
        "librosa_griffinlim": lambda: librosa.griffinlim(
            magnitude.numpy(), n_iter=n_iter, hop_length=rep.hop_length, n_fft=rep.n_fft, window="hann",
            center=True, length=length, pad_mode="constant", random_state=seed),
        "source_phase_griffin_lim": lambda: griffin_lim(magnitude, source_phase, n_iter, length, rep).numpy(),
        "source_phase": lambda: griffin_lim(magnitude, source_phase, 0, length, rep).numpy(),
        **(extra or {}),
    }
    results = {}
    for name, run in runs.items():
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            audio = run()
            times.append(time.perf_counter() - start)
        results[name] = (np.asarray(audio, dtype=np.float32), min(times))
    return results


def inversion_quality(magnitude: torch.Tensor, inversions: dict[str, tuple[np.ndarray, float]],
                      rep: Representation) -> dict[str, dict]:
    """{name: {"spectral_convergence_db", "seconds"}}: spectral_convergence between `magnitude` [n_fft//2 + 1,
    frames] and the STFT magnitude of each inversion's audio (see `invert`)."""
    return {name: {"spectral_convergence_db": spectral_convergence(magnitude, stft(torch.from_numpy(audio), rep).abs()),
                   "seconds": seconds} for name, (audio, seconds) in inversions.items()}


def checkerboard_power(images: np.ndarray | torch.Tensor) -> float:
    """Mean power at the three highest spatial frequencies of images [..., H, W]: the period-2 patterns along
    rows, along columns and diagonally, i.e. the 2-D DFT bins (H/2, 0), (0, W/2) and (H/2, W/2), each
    normalised by the number of pixels, averaged over the leading axes.

    A stride-2 transposed convolution whose kernel overlaps unevenly puts its checkerboard there (Odena et al.
    2016); compare a generator's output with its input: 10 log10(output / input) dB above 0 means it added one.
    """
    images = torch.as_tensor(np.asarray(images, dtype=np.float32))
    height, width = images.shape[-2:]
    rows = (-1.0) ** torch.arange(height, dtype=torch.float32)[:, None]
    columns = (-1.0) ** torch.arange(width, dtype=torch.float32)[None, :]
    power = sum((images * sign).mean(dim=(-2, -1)) ** 2 for sign in (rows, columns, rows * columns))
    return float(power.mean())
