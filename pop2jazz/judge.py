"""The genre judge of evaluate.py and train.py --eval-every: does a conversion sound like jazz, or only like the
recording sound of the jazz it was trained on?

Every feature reads a spectrogram image (spectrogram.py: [n_bins, frames] in [-1, 1]) through
metrics.image_magnitude, so real chunks, generator outputs and the re-analysed audio of a conversion are all seen
through the same -100 dB floor and the classifier cannot tell them apart by the representation alone.

- `chunk_features`: per-chunk statistics that a recording channel leaves alone, the genre front end of
  Tzanetakis & Cook 2002 made channel-robust. A fixed equaliser, a level change or a codec shifts each log-mel
  band by a constant, which moves the band's mean but not its movement in time; so the features are the spread in
  time of the log-mel bands up to 8 kHz (where low-passed old recordings and codecs still reach), of their MFCCs
  and of the MFCCs' deltas (cepstral mean normalisation: the means are dropped); the rhythm, as the
  autocorrelation of the onset strength (librosa's tempogram, normalised, pooled into log-spaced lag bands); and
  the texture, as the harmonic-to-percussive power ratio per band (librosa's HPSS), which an equaliser scales
  alike on both sides. Chroma is left out on purpose: it is the content we want a conversion to keep. So are
  the band means, which are the channel (tilt, low-pass, loudness) rather than the music.
- `GenreClassifier` / `train_genre_classifier`: scikit-learn StandardScaler + LogisticRegression on those
  features, trained on the training split's songs, each also through AUGMENT_DRAWS random recording channels
  (channel.random_channel) so that it learns to ignore them; its accuracy cross-validated by song (chunks of one
  song, clean or augmented, are never on both sides of a fold), on clean and on augmented held-out chunks.
- `channel_robustness`: for each channel change alone (channel.CHANNEL_TESTS), the share of held-out decisions
  it flips.
- `cached_judge`: both of them, kept on disk (JudgeCache) under a key of the songs' bytes, the settings and the
  judge's own code, so that evaluate.py trains the judge of a data split once, not once per checkpoint.
- `TransferRateLog`: the cheap part of evaluate.py that train.py --eval-every runs after an epoch.
- `verdicts`: what the transfer figures may be read as, in words, given the ceiling and the EQ-to-jazz baseline.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import pickle
from pathlib import Path
from typing import Sequence

import librosa
import numpy as np
import sklearn
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from pop2jazz.channel import CHANNEL_TESTS, CLEAN, eq_to_jazz, long_term_spectrum, random_channel
from pop2jazz.errors import InputError
from pop2jazz.metrics import chroma_similarity, image_magnitude, time_smeared
from pop2jazz.output_files import atomic_write_bytes, write_csv
from pop2jazz.plots import save_curves
from pop2jazz.spectrogram import Representation, chunk_to_audio, load_audio

N_MELS = 48
MEL_FMAX = 8000.0  # Hz: the top of the log-mel bands the genre features read
N_MFCC = 20
TEMPOGRAM_LAGS = 256  # onset-autocorrelation window, frames (2.97 s)
LAG_EDGES = np.unique(np.geomspace(1, TEMPOGRAM_LAGS, 25).astype(int))  # log-spaced lag bands, 11.6 ms .. 2.97 s
N_RHYTHM = len(LAG_EDGES) - 1  # 21
N_HPSS_BANDS = 24  # mel bands up to MEL_FMAX of the harmonic-to-percussive ratio
HPSS_KERNEL = 17  # librosa.decompose.hpss's median filters: 17 frames (197 ms) in time, 17 bins (366 Hz) in frequency
N_FEATURES = 2 * N_MFCC + N_MELS + N_RHYTHM + N_HPSS_BANDS  # 133
POP, JAZZ = 0, 1  # class labels
CV_FOLDS = 5
AUGMENT_DRAWS = 4  # random recording channels per training song, besides the clean song


def log_mel(magnitude: np.ndarray, rep: Representation = Representation()) -> np.ndarray:
    """Log-mel power [N_MELS, frames] from 0 to MEL_FMAX Hz in dB re a full-scale bin, floored at rep.db_min,
    from |STFT| [n_fft//2 + 1, frames].

    librosa.feature.melspectrogram (Slaney mel scale and filter normalisation) and librosa.power_to_db.
    """
    reference = rep.magnitude_ref ** 2
    mel = librosa.feature.melspectrogram(S=magnitude ** 2, sr=rep.sample_rate, n_fft=rep.n_fft, n_mels=N_MELS,
                                         fmax=min(MEL_FMAX, rep.sample_rate / 2))
    return librosa.power_to_db(mel, ref=reference, amin=reference * 10.0 ** (rep.db_min / 10.0), top_db=None)


def chunk_features(image: np.ndarray | torch.Tensor, rep: Representation = Representation()) -> np.ndarray:
    """Channel-robust genre features of one image [n_bins, frames] -> [N_FEATURES]: over frames, the standard
    deviation of the MFCCs (librosa.feature.mfcc of the log-mel), of their deltas (librosa.feature.delta) and of
    the log-mel bands (dB); then the rhythm: librosa.feature.tempogram of librosa.onset.onset_strength (each
    frame's onset autocorrelation over TEMPOGRAM_LAGS lags, normalised to 1 at lag 0), averaged over frames and
    over the lag bands between LAG_EDGES; and the texture: the harmonic-to-percussive power ratio (dB) in
    N_HPSS_BANDS mel bands, from librosa.decompose.hpss (Fitzgerald 2010) of the STFT power below MEL_FMAX. No
    band means: they are the recording channel. A fixed gain per frequency scales a band's harmonic and
    percussive parts alike, so their ratio keeps only what the instruments play."""
    magnitude = image_magnitude(image, rep)
    mel_db = log_mel(magnitude, rep)
    mfcc = librosa.feature.mfcc(S=mel_db, n_mfcc=N_MFCC)
    onset = librosa.onset.onset_strength(S=mel_db, sr=rep.sample_rate, hop_length=rep.hop_length)
    tempogram = librosa.feature.tempogram(onset_envelope=onset, sr=rep.sample_rate, hop_length=rep.hop_length,
                                          win_length=TEMPOGRAM_LAGS).mean(axis=1)
    rhythm = [tempogram[low:high].mean() for low, high in zip(LAG_EDGES[:-1], LAG_EDGES[1:])]
    return np.concatenate([mfcc.std(axis=1), librosa.feature.delta(mfcc).std(axis=1), mel_db.std(axis=1), rhythm,
                           harmonic_ratio(magnitude, rep)])


def harmonic_ratio(magnitude: np.ndarray, rep: Representation = Representation()) -> np.ndarray:
    """Harmonic-to-percussive power ratio in dB of each of N_HPSS_BANDS mel bands up to MEL_FMAX, over a whole
    |STFT| [n_fft//2 + 1, frames] -> [N_HPSS_BANDS]. librosa.decompose.hpss (median filtering, Fitzgerald 2010)
    of the power below MEL_FMAX, then a Slaney mel filter bank (librosa.filters.mel)."""
    top = int(np.ceil(min(MEL_FMAX, rep.sample_rate / 2) * rep.n_fft / rep.sample_rate)) + 1
    harmonic, percussive = librosa.decompose.hpss(magnitude[:top] ** 2, kernel_size=HPSS_KERNEL)
    bank = librosa.filters.mel(sr=rep.sample_rate, n_fft=rep.n_fft, n_mels=N_HPSS_BANDS,
                               fmax=min(MEL_FMAX, rep.sample_rate / 2))[:, :top]
    floor = rep.magnitude_ref ** 2 * 10.0 ** (rep.db_min / 10.0)  # the image's floor: silence, not a ratio
    return 10.0 * np.log10((bank @ harmonic.sum(axis=1) + floor) / (bank @ percussive.sum(axis=1) + floor))


def features_of(images: Sequence, rep: Representation = Representation(), desc: str | None = None) -> np.ndarray:
    """`chunk_features` of each image in a sequence [n, n_bins, frames] -> [n, N_FEATURES]; tqdm when `desc`."""
    rows = [chunk_features(image, rep) for image in tqdm(images, desc=desc, unit="chunk", disable=desc is None,
                                                          leave=False)]
    return np.stack(rows) if rows else np.zeros((0, N_FEATURES))


@dataclasses.dataclass
class GenreClassifier:
    """A fitted jazz-vs-pop classifier; its accuracy cross-validated by song (fraction of chunks right) on clean
    and on channel-augmented held-out chunks; and `jazz_spectrum_db`, the long-term spectrum of its clean jazz
    training chunks ([n_bins] dB, channel.long_term_spectrum), the target of the EQ-to-jazz baseline."""

    pipeline: Pipeline
    cv_accuracy: float
    cv_accuracy_std: float
    cv_accuracy_augmented: float
    cv_folds: int
    train_songs: dict[str, int]
    train_chunks: dict[str, int]
    augment_draws: int
    jazz_spectrum_db: np.ndarray

    def jazz_probability(self, features: np.ndarray) -> np.ndarray:
        """P(jazz) for each row of `features` [n, N_FEATURES] -> [n]."""
        return self.pipeline.predict_proba(features)[:, list(self.pipeline.classes_).index(JAZZ)]

    def is_jazz(self, features: np.ndarray) -> np.ndarray:
        """The predicted class of each row [n, N_FEATURES] == jazz -> bool [n]."""
        return self.pipeline.predict(features) == JAZZ

    def summary(self) -> dict:
        """The plain-value figures of the classifier, for the JSON report."""
        return {"cv_accuracy": self.cv_accuracy, "cv_accuracy_std": self.cv_accuracy_std,
                "cv_accuracy_augmented": self.cv_accuracy_augmented, "cv_folds": self.cv_folds,
                "train_songs": self.train_songs, "train_chunks": self.train_chunks, "augment_draws": self.augment_draws,
                "features": N_FEATURES, "model": "StandardScaler + LogisticRegression"}


def classifier_pipeline() -> Pipeline:
    """StandardScaler + L2-regularised logistic regression (scikit-learn defaults, C = 1)."""
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))


def song_rows(song: Path, rep: Representation, rng: np.random.Generator, draws: int
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """(clean chunks, augmented chunks) of one song file: images [n, n_bins, chunk_frames] cut as
    audio_preprocessing.py cuts them, and [draws * n, n_bins, chunk_frames] of the song through `draws` random
    recording channels (channel.random_channel). Raises AudioError as spectrogram.load_audio does."""
    audio = load_audio(song, rep.sample_rate)
    clean = CLEAN.chunks(audio, rep, rng)
    augmented = [random_channel(rng).chunks(audio, rep, rng) for _ in range(draws)]
    return clean, torch.cat(augmented) if augmented else clean[:0]


def train_genre_classifier(pop_songs: Sequence[Path], jazz_songs: Sequence[Path],
                           rep: Representation = Representation(), folds: int = CV_FOLDS, seed: int = 0,
                           draws: int = AUGMENT_DRAWS, progress: bool = False) -> GenreClassifier:
    """Fit the classifier on the training songs (audio files, cut into chunks as audio_preprocessing.py cuts
    them), each song's chunks clean and through `draws` random recording channels (`song_rows`), and each pop
    song's clean chunks also through the two trivial baselines, labelled pop: equalised to the jazz training
    chunks' long-term spectrum (channel.eq_to_jazz) and smeared in time (metrics.time_smeared), so that neither
    an equaliser nor blur alone wins on this judge. (They count as augmented chunks of their song in the folds;
    the EQ target is the spectrum of all the jazz training songs, held-out folds' included.)

    Accuracy: StratifiedGroupKFold over songs, min(folds, songs per domain) folds; each fold is fitted on the
    clean and augmented chunks of its training songs and scored on its held-out songs' clean chunks
    (cv_accuracy) and augmented chunks (cv_accuracy_augmented). Raises InputError when a domain has fewer than 2
    songs at least one chunk long (no held-out song to test on), AudioError when a song cannot be read.
    """
    features, labels, groups, augmented, songs, jazz_chunks, pop_chunks = [], [], [], [], {}, [], []
    for name, label, paths in (("pop", POP, pop_songs), ("jazz", JAZZ, jazz_songs)):
        for index, song in enumerate(tqdm(paths, desc=f"{name} training songs, {draws} channels each",
                                          unit="song", disable=not progress, leave=False)):
            clean, changed = song_rows(song, rep, np.random.default_rng([seed, label, index]), draws)
            (jazz_chunks if label == JAZZ else pop_chunks).append((clean, index))
            for chunks, is_augmented in ((clean, False), (changed, True)):
                features.append(features_of(chunks, rep))
                labels += [label] * len(chunks)
                groups += [f"{name}/{index}"] * len(chunks)
                augmented += [is_augmented] * len(chunks)
        songs[name] = len({group for group in groups if group.startswith(f"{name}/")})
    if min(songs.values()) < 2:
        raise InputError(f"the genre classifier needs at least 2 training songs per domain at least one chunk "
                         f"long, got {songs}: preprocess more songs with `uv run audio_preprocessing.py`")
    jazz_spectrum = long_term_spectrum(torch.cat([chunks for chunks, _ in jazz_chunks]), rep)
    for clean, index in [(chunks, index) for chunks, index in pop_chunks if len(chunks)]:  # trivial baselines: pop
        for changed in (eq_to_jazz(clean, jazz_spectrum, rep), time_smeared(clean, rep=rep)):
            features.append(features_of(changed, rep))
            labels += [POP] * len(changed)
            groups += [f"pop/{index}"] * len(changed)
            augmented += [True] * len(changed)
    features, labels, augmented = np.concatenate(features), np.array(labels), np.array(augmented)
    cv = StratifiedGroupKFold(n_splits=min(folds, *songs.values()), shuffle=True, random_state=seed)
    clean_scores, augmented_scores = [], []
    for train, test in cv.split(features, labels, groups):
        fold = classifier_pipeline().fit(features[train], labels[train])
        clean_scores.append(fold.score(features[test[~augmented[test]]], labels[test[~augmented[test]]]))
        if augmented[test].any():
            augmented_scores.append(fold.score(features[test[augmented[test]]], labels[test[augmented[test]]]))
    pipeline = classifier_pipeline().fit(features, labels)
    clean_labels = labels[~augmented]
    return GenreClassifier(pipeline, float(np.mean(clean_scores)), float(np.std(clean_scores)),
                           float(np.mean(augmented_scores)) if augmented_scores else float("nan"),
                           cv.get_n_splits(), songs,
                           {"pop": int((clean_labels == POP).sum()), "jazz": int((clean_labels == JAZZ).sum())},
                           draws, jazz_spectrum)


def channel_robustness(classifier: GenreClassifier, pop_songs: Sequence[Path], jazz_songs: Sequence[Path],
                       rep: Representation = Representation(), seed: int = 0) -> dict:
    """How the judge's decisions on held-out songs move under each recording-channel change alone
    (channel.CHANNEL_TESTS): {"clean_accuracy": fraction of clean chunks right, "chunks": {"pop": n, "jazz": n},
    "changes": {name: {"pop_flipped", "jazz_flipped", "flipped": fractions of chunks whose class differs from
    the clean chunk's, "accuracy"}}}. Raises AudioError when a song cannot be read."""
    clean, changed = {}, {name: {} for name in CHANNEL_TESTS}
    for name, label, paths in (("pop", POP, pop_songs), ("jazz", JAZZ, jazz_songs)):
        rng = np.random.default_rng([seed, label])
        audio = [load_audio(song, rep.sample_rate) for song in paths]
        clean[name] = classifier.is_jazz(features_of(torch.cat([CLEAN.chunks(a, rep, rng) for a in audio]), rep))
        for test, change in CHANNEL_TESTS.items():
            changed[test][name] = classifier.is_jazz(features_of(torch.cat([change.chunks(a, rep, rng)
                                                                            for a in audio]), rep))
    truth = np.concatenate([np.zeros(len(clean["pop"]), bool), np.ones(len(clean["jazz"]), bool)])
    clean_both = np.concatenate([clean["pop"], clean["jazz"]])

    def moved(test: str) -> dict:
        both = np.concatenate([changed[test]["pop"], changed[test]["jazz"]])
        return {**{f"{name}_flipped": float(np.mean(changed[test][name] != clean[name])) if len(clean[name])
                   else float("nan") for name in ("pop", "jazz")},
                "flipped": float(np.mean(both != clean_both)), "accuracy": float(np.mean(both == truth))}

    return {"clean_accuracy": float(np.mean(clean_both == truth)),
            "chunks": {name: len(value) for name, value in clean.items()},
            "changes": {test: moved(test) for test in CHANNEL_TESTS}}


CACHE_VARIABLE = "POP2JAZZ_CACHE"  # where the judge cache lives; "off" disables it
JUDGE_CODE = ("judge.py", "channel.py", "metrics.py", "spectrogram.py", "audio_files.py")  # what its figures depend on


class JudgeCache:
    """Fitted judges on disk: one pickle per key, in $POP2JAZZ_CACHE, else $XDG_CACHE_HOME/pop2jazz/judge (by
    default ~/.cache/pop2jazz/judge); POP2JAZZ_CACHE=off keeps nothing.

    A key is the SHA-256 of everything the judge's figures depend on: the bytes of each song, in order, the
    representation, the seed and draws, the source of JUDGE_CODE and the versions of scikit-learn, librosa and
    numpy. So a changed song, setting or judge is never answered from the cache. A cache that cannot be read or
    written only costs the training again; it never fails a command. `folder`, when given, is used whatever the
    environment says."""

    def __init__(self, folder: Path | None = None):
        setting = os.environ.get(CACHE_VARIABLE, "")
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pop2jazz" / "judge"
        self.folder = Path(folder) if folder else None if setting == "off" else Path(setting or base)

    @staticmethod
    def key(kind: str, songs: Sequence[Sequence[Path]], **settings) -> str | None:
        """The hex SHA-256 of `kind`, the songs' bytes (each list in order), `settings` (plain values) and the
        judge's code and libraries; None when a song cannot be read (the fit then names it, as it always does)."""
        digest = hashlib.sha256(json.dumps({"kind": kind, **settings, "versions": [
            sklearn.__version__, librosa.__version__, np.__version__]}, sort_keys=True, default=str).encode())
        code = Path(__file__).parent
        for name in JUDGE_CODE:
            digest.update((code / name).read_bytes())
        try:
            for group in songs:
                digest.update(b"|")
                for song in group:
                    digest.update(hashlib.sha256(Path(song).read_bytes()).digest())
        except OSError:
            return None
        return digest.hexdigest()

    def get(self, key: str | None):
        """The object stored under `key`, or None (no key, nothing there, caching off, or a file that does not
        load)."""
        if self.folder is None or key is None:
            return None
        try:
            return pickle.loads((self.folder / f"{key}.pkl").read_bytes())
        except Exception:  # missing, truncated by a full disk, or pickled by other class definitions: fit again
            return None

    def put(self, key: str | None, value) -> None:
        """Keep `value` under `key`, written atomically; a folder that cannot take it is left alone."""
        if self.folder is not None and key is not None:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(self.folder / f"{key}.pkl", pickle.dumps(value))
            except OSError:
                pass


def cached_judge(pop_train: Sequence[Path], jazz_train: Sequence[Path], pop_songs: Sequence[Path],
                 jazz_songs: Sequence[Path], rep: Representation = Representation(), seed: int = 0,
                 progress: bool = False, cache: JudgeCache | None = None) -> tuple[GenreClassifier, dict]:
    """(`train_genre_classifier` of the training songs, its `channel_robustness` on the held-out songs), each
    from `cache` (JudgeCache() by default) when the same songs, settings and judge code were seen before, else
    computed and kept there. The figures are the same either way: both are deterministic given the seed.
    Raises what those two raise."""
    cache = cache or JudgeCache()
    settings = {"representation": rep.to_dict(), "seed": seed, "draws": AUGMENT_DRAWS, "folds": CV_FOLDS}
    key = cache.key("classifier", [pop_train, jazz_train], **settings)
    classifier = cache.get(key)
    if not isinstance(classifier, GenreClassifier):
        classifier = train_genre_classifier(pop_train, jazz_train, rep, seed=seed, progress=progress)
        cache.put(key, classifier)
    robustness_key = key and cache.key("robustness", [pop_songs, jazz_songs], classifier=key, **settings)
    robustness = cache.get(robustness_key)
    if not isinstance(robustness, dict):
        robustness = channel_robustness(classifier, pop_songs, jazz_songs, rep, seed)
        cache.put(robustness_key, robustness)
    return classifier, robustness


def transfer_figures(classifier: GenreClassifier, features: np.ndarray) -> dict:
    """{"jazz_rate": fraction of chunks classified jazz, "jazz_probability": mean P(jazz), "chunks": n}."""
    return {"jazz_rate": float(classifier.is_jazz(features).mean()),
            "jazz_probability": float(classifier.jazz_probability(features).mean()), "chunks": len(features)}


class TransferRateLog:
    """train.py --eval-every: the style transfer rate of generator_ab on the held-out pop chunks, per epoch.

    The classifier is trained once, here, on the training songs, unless one is given; the pop baseline and the
    EQ-to-jazz baseline (channel.eq_to_jazz) are measured once, for the curve to be read against. Each call runs
    the generator on each pop_val chunk on its own (no cross-fading, no Griffin-Lim: features of the generated
    magnitude, so figures differ a little from evaluate.py's) and rewrites `path` (CSV: FIELDS), keeping the
    rows of earlier epochs so a resumed run continues its log, and its curves beside it (`path` with .png).
    Raises InputError / AudioError as train_genre_classifier does.
    """

    FIELDS = ("epoch", "transfer_rate", "jazz_probability", "chroma_similarity", "pop_baseline", "eq_baseline",
              "tagger_jazz", "tagger_pop", "tagger_jazz_over_pop", "tagger_pop_baseline", "tagger_eq_baseline")
    GRIFFIN_LIM_ITERS = 16  # zero-phase Griffin-Lim of each chunk, for the tagger's ears (a log has no source phase)

    def __init__(self, pop_train_songs: Sequence[Path], jazz_train_songs: Sequence[Path], pop_val: Sequence,
                 path: Path, rep: Representation = Representation(), classifier: GenreClassifier | None = None):
        self.rep, self.path = rep, Path(path)
        self.classifier = classifier or train_genre_classifier(pop_train_songs, jazz_train_songs, rep,
                                                               progress=True)
        self.inputs = torch.from_numpy(np.stack([pop_val[index] for index in range(len(pop_val))]))
        self.baseline = transfer_figures(self.classifier, features_of(self.inputs, rep))["jazz_rate"]
        equalised = eq_to_jazz(self.inputs, self.classifier.jazz_spectrum_db, rep)
        self.eq_baseline = transfer_figures(self.classifier, features_of(equalised, rep))["jazz_rate"]
        # The pretrained tagger is a judge only, logged and never used for a decision; it is imported here, in
        # this class alone, so that nothing else in training reaches it (tests/test_structure.py).
        from pop2jazz.tagger import Tagger
        self.tagger = Tagger()
        self.tagger_baseline = self.tagger_summary(self.inputs)
        self.tagger_eq_baseline = self.tagger_summary(equalised)
        tqdm.write(f"tagger (musicnn MSD, at {self.tagger.level_dbfs:g} dBFS): mean P(jazz) of the held-out pop "
                   f"{self.tagger_baseline['jazz_probability']:.3f}, after the EQ-to-jazz baseline "
                   f"{self.tagger_eq_baseline['jazz_probability']:.3f}")
        tqdm.write(f"judge: {len(self.inputs)} held-out pop chunks, {self.baseline:.0%} classified jazz as they are, "
                   f"{self.eq_baseline:.0%} after the EQ-to-jazz baseline (cross-validated accuracy "
                   f"{self.classifier.cv_accuracy:.0%} clean, {self.classifier.cv_accuracy_augmented:.0%} through "
                   f"random recording channels)")

    def tagger_summary(self, images: torch.Tensor) -> dict:
        """The tagger's TaggerFigures.summary() of chunk images [n, n_bins, frames], each made audio by
        GRIFFIN_LIM_ITERS iterations of Griffin-Lim from zero phase (the same for the inputs and the outputs)."""
        audio = [chunk_to_audio(torch.as_tensor(image, dtype=torch.float32), self.GRIFFIN_LIM_ITERS, self.rep).numpy()
                 for image in images]
        return self.tagger.figures(audio, self.rep.sample_rate).summary()

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
               "chroma_similarity": float(similarity), "pop_baseline": self.baseline, "eq_baseline": self.eq_baseline}
        heard = self.tagger_summary(outputs)
        row |= {"tagger_jazz": heard["jazz_probability"], "tagger_pop": heard["pop_probability"],
                "tagger_jazz_over_pop": heard["jazz_over_pop"],
                "tagger_pop_baseline": self.tagger_baseline["jazz_probability"],
                "tagger_eq_baseline": self.tagger_eq_baseline["jazz_probability"]}
        rows = []
        if self.path.is_file():
            with open(self.path, newline="") as file:  # a log from before the EQ baseline: the run's own figure
                rows = [{**{field: "nan" for field in self.FIELDS}, **{key: value for key, value in old.items()
                                                                      if key in self.FIELDS},
                         "eq_baseline": old.get("eq_baseline") or self.eq_baseline}
                        for old in csv.DictReader(file) if int(old["epoch"]) < epoch]
        write_csv(self.path, [*rows, row], list(self.FIELDS))
        save_curves([*rows, row], self.FIELDS[1:], self.path.with_suffix(".png"),
                    "held-out pop chunks after conversion", "share / probability / similarity")
        tqdm.write(f"epoch {epoch}: tagger mean P(jazz) {heard['jazz_probability']:.3f} after conversion (pop "
                   f"{self.tagger_baseline['jazz_probability']:.3f}, EQ-to-jazz "
                   f"{self.tagger_eq_baseline['jazz_probability']:.3f}), P(pop) {heard['pop_probability']:.3f}")
        tqdm.write(f"epoch {epoch}: {figures['jazz_rate']:.0%} of held-out pop chunks classified jazz after "
                   f"conversion (pop baseline {self.baseline:.0%}, EQ-to-jazz baseline {self.eq_baseline:.0%}, "
                   f"mean P(jazz) {figures['jazz_probability']:.2f}), chroma similarity {similarity:.3f}")
        return row


CEILING_MIN = 0.8  # below this share of real jazz classified jazz, the judge cannot say what jazz is
CHANNEL_WARNING = 0.25  # an EQ baseline this much (or more) above the pop baseline: the judge hears the channel
ABOVE_CEILING = 0.1  # a conversion this much above the real jazz: it games the judge
NO_JAZZ = "this figure cannot tell jazz from the recording sound of the training set"


TAGGER_LABELS = {"pop_baseline": "pop", "level_control": "pop at the converted level", "eq_baseline": "EQ-to-jazz",
                 "smear_control": "pop smeared 0.1 s", "converted": "converted", "jazz_ceiling": "real jazz"}
TAGGER_MARGIN = 0.02  # mean P(jazz): a conversion must be more than this above a baseline to beat it
TAGGER_CEILING_MIN = 0.5  # below this share of the real jazz's patches heard as jazz rather than pop: no ceiling
TAGGER_NO_JAZZ = "the tagger cannot tell these jazz songs from the pop, and its figures say little here"


def tagger_verdicts(heard: dict) -> list[dict]:
    """What the pretrained tagger's figures (evaluate.tagger_figures: {"rows": {row: {"jazz_probability",
    "pop_probability", "jazz_over_pop"}}, "kid": {row: KID}, "level_dbfs"}) may be read as, in words:
    [{"text", "warning"}]. The headline verdicts of evaluate.py.

    Warnings: the real jazz heard as jazz rather than pop in under TAGGER_CEILING_MIN of its patches, or with a
    mean P(jazz) no higher than the pop's; a conversion whose mean P(jazz) is not more than TAGGER_MARGIN above
    the pop's ("no better than the pop"), the EQ-to-jazz baseline's ("does not beat the EQ baseline") or the
    smeared pop's; a conversion whose embeddings are no closer to the real jazz (KID) than the EQ baseline's.
    Without a warning, one line says how far from the pop towards the real jazz the conversion moved.
    """
    rows, kid = heard["rows"], heard.get("kid", {})
    p = {row: figures["jazz_probability"] for row, figures in rows.items()}
    jazz, pop, eq, converted = p["jazz_ceiling"], p["pop_baseline"], p["eq_baseline"], p["converted"]
    level = f"every chunk at {heard['level_dbfs']:g} dBFS RMS"
    found = []
    if rows["jazz_ceiling"]["jazz_over_pop"] < TAGGER_CEILING_MIN or jazz <= pop:
        found.append(f"The tagger hears only {rows['jazz_ceiling']['jazz_over_pop']:.0%} of the real jazz's 3 s "
                     f"patches as more jazz than pop (mean P(jazz) {jazz:.2f}, the pop's {pop:.2f}): "
                     f"{TAGGER_NO_JAZZ}.")
    if converted <= pop + TAGGER_MARGIN:
        found.append(f"The conversion (mean P(jazz) {converted:.2f}) is no better than the pop it started from "
                     f"({pop:.2f}), as the pretrained tagger hears it ({level}).")
    if converted <= eq + TAGGER_MARGIN:
        found.append(f"The conversion (mean P(jazz) {converted:.2f}) does not beat the EQ-to-jazz baseline "
                     f"({eq:.2f}): as far as the pretrained tagger hears, it does no more than an equaliser.")
    if "smear_control" in p and converted <= p["smear_control"] + TAGGER_MARGIN:
        found.append(f"The conversion (mean P(jazz) {converted:.2f}) does not beat the pop smeared in time "
                     f"({p['smear_control']:.2f}): blur alone would do as well, as the tagger hears it.")
    if "converted" in kid and "eq_baseline" in kid and not kid["converted"] < kid["eq_baseline"]:
        found.append(f"The conversion's tagger embeddings are no closer to the real jazz's (KID "
                     f"{kid['converted']:.3f}) than the EQ-to-jazz baseline's ({kid['eq_baseline']:.3f}).")
    if found:
        return [{"text": f"warning: {text}", "warning": True} for text in found]
    share = (converted - pop) / (jazz - pop)
    return [{"text": f"The pretrained tagger ({level}) hears the conversion (mean P(jazz) {converted:.2f}) above the "
                     f"pop ({pop:.2f}), the EQ-to-jazz baseline ({eq:.2f}) and the smeared pop, {share:.0%} of the "
                     f"way from the pop to the real jazz ({jazz:.2f}), and its embeddings closer to the real jazz "
                     f"than the EQ baseline's.", "warning": False}]


def verdicts(style_transfer: dict) -> list[dict]:
    """What the transfer figures of evaluate.py may and may not be read as, in words: [{"text", "warning"}].

    style_transfer: {"pop_baseline", "eq_baseline", "converted", "jazz_ceiling", optionally "smear_control":
    {"jazz_rate", ...}} (see
    evaluate.summarise). Warnings: a ceiling (real jazz classified jazz) under CEILING_MIN; a conversion that does
    not beat the EQ-to-jazz baseline, or the pop smeared in time ("smear_control", when given); one more than
    ABOVE_CEILING above the ceiling; an EQ baseline CHANNEL_WARNING or more above the pop baseline. Without a
    warning, one line says what the figure does show.
    """
    ceiling, eq = style_transfer["jazz_ceiling"]["jazz_rate"], style_transfer["eq_baseline"]["jazz_rate"]
    converted, pop = style_transfer["converted"]["jazz_rate"], style_transfer["pop_baseline"]["jazz_rate"]
    found = []
    if ceiling < CEILING_MIN:
        found.append(f"The judge classifies only {ceiling:.0%} of the real jazz it was given as jazz (the ceiling, "
                     f"under {CEILING_MIN:.0%}): {NO_JAZZ}.")
    if converted <= eq:
        found.append(f"The conversion ({converted:.0%} classified jazz) does not beat the EQ-to-jazz baseline "
                     f"({eq:.0%}): as far as this judge hears, it does no more than an equaliser, and {NO_JAZZ}.")
    if converted > ceiling + ABOVE_CEILING:
        found.append(f"The conversion ({converted:.0%} classified jazz) scores above the real jazz ({ceiling:.0%}): "
                     f"the generator has found something this judge listens for that real jazz has less of; read "
                     f"its figure as an upper bound, not as more jazz than jazz.")
    if "smear_control" in style_transfer and converted <= style_transfer["smear_control"]["jazz_rate"]:
        found.append(f"The conversion ({converted:.0%} classified jazz) does not beat the pop smeared in time "
                     f"({style_transfer['smear_control']['jazz_rate']:.0%}): as far as this judge hears, blur alone "
                     f"would do as well.")
    if eq >= pop + CHANNEL_WARNING - 1e-9:
        found.append(f"The EQ-to-jazz baseline alone moves pop from {pop:.0%} to {eq:.0%} classified jazz: the "
                     f"judge hears the recording channel; read the conversion against the EQ baseline, not the "
                     f"pop input.")
    if found:
        return [{"text": f"warning: {text}", "warning": True} for text in found]
    return [{"text": f"The judge classifies {ceiling:.0%} of the real jazz it was given as jazz, and the conversion "
                     f"({converted:.0%}) beats both the pop input ({pop:.0%}) and the EQ-to-jazz baseline ({eq:.0%}): "
                     f"it changes more than the recording channel, as far as this judge hears.", "warning": False}]
