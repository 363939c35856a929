"""How far can evaluate.py's judge be trusted? Its accuracy and its blind spots, cross-validated over every song.

    uv run experiments/judge.py                  # the 20 shared clips: 5 folds by song x 3 seeds, 2 minutes
    uv run experiments/judge.py --clips ~/gtzan  # any folder with pop/ and jazz/ songs

evaluate.py measures its judge on the few songs one split holds out (3 + 3 for the bundled model). This runs the
same judge (judge.py: the features, the training through random recording channels) over all songs of --clips,
each song held out once per seed (StratifiedGroupKFold by song), and reports for the held-out songs:

- accuracy on their clean chunks and on their chunks through random recording channels (channel.random_channel);
- the share of their decisions each channel change alone flips (channel.CHANNEL_TESTS);
- how many of their pop chunks it calls jazz as they are, after the EQ-to-jazz baseline (channel.eq_to_jazz, to
  the fold's jazz training spectrum) and smeared in time (metrics.time_smeared): a judge that hears the channel
  or rewards blur calls more of them jazz than of the pop as it is.

Prints a Markdown table and writes it with the figures to --output (judge.md, judge.json).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import StratifiedGroupKFold
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project's modules, run from anywhere

from pop2jazz.channel import CHANNEL_TESTS, eq_to_jazz, long_term_spectrum  # noqa: E402
from pop2jazz.dataset import example_clips, find_audio_files  # noqa: E402
from pop2jazz.judge import AUGMENT_DRAWS, JAZZ, POP, classifier_pipeline, features_of, song_rows  # noqa: E402
from pop2jazz.metrics import time_smeared  # noqa: E402
from pop2jazz.output_files import atomic_write_bytes  # noqa: E402
from pop2jazz.spectrogram import Representation, load_audio  # noqa: E402


def song_figures(song: Path, label: int, rep: Representation, index: int) -> dict:
    """Features of one song's chunks: clean, through AUGMENT_DRAWS random channels, through each channel test,
    and (pop) its smeared chunks; its clean chunk images for the EQ baseline."""
    rng = np.random.default_rng([0, label, index])
    clean, augmented = song_rows(song, rep, rng, AUGMENT_DRAWS)
    audio = load_audio(song, rep.sample_rate)
    return {"label": label, "chunks": clean, "clean": features_of(clean, rep), "augmented": features_of(augmented, rep),
            "tests": {name: features_of(change.chunks(audio, rep, rng), rep) for name, change in CHANNEL_TESTS.items()},
            "smeared": features_of(time_smeared(clean, rep=rep), rep) if label == POP else None}


def cross_validate(songs: list[dict], seeds: int, rep: Representation) -> dict:
    """Every song held out once per seed; the judge fitted on the rest (clean and augmented chunks) -> the
    pooled figures of the held-out songs."""
    labels = np.array([song["label"] for song in songs])
    right = {"clean": [], "augmented": []}
    flips = {name: [] for name in CHANNEL_TESTS}
    pop_rates = {"as it is": [], "EQ to jazz": [], "smeared": []}
    folds_count = int(min(5, *np.bincount(labels)))  # every fold holds out a song of each genre
    for seed in range(seeds):
        folds = StratifiedGroupKFold(n_splits=folds_count, shuffle=True, random_state=seed)
        for train, test in folds.split(np.zeros(len(songs)), labels, groups=np.arange(len(songs))):
            rows = [(song[key], song["label"]) for song in (songs[i] for i in train) for key in ("clean", "augmented")]
            judge = classifier_pipeline().fit(np.concatenate([x for x, _ in rows]),
                                              np.concatenate([[y] * len(x) for x, y in rows]))
            jazz_spectrum = long_term_spectrum(torch.cat([songs[i]["chunks"] for i in train
                                                          if songs[i]["label"] == JAZZ]), rep)
            for song in (songs[i] for i in test):
                clean = judge.predict(song["clean"])
                right["clean"] += list(clean == song["label"])
                right["augmented"] += list(judge.predict(song["augmented"]) == song["label"])
                for name in CHANNEL_TESTS:
                    flips[name] += list(judge.predict(song["tests"][name]) != clean)
                if song["label"] == POP:
                    equalised = features_of(eq_to_jazz(song["chunks"], jazz_spectrum, rep), rep)
                    pop_rates["as it is"] += list(clean == JAZZ)
                    pop_rates["EQ to jazz"] += list(judge.predict(equalised) == JAZZ)
                    pop_rates["smeared"] += list(judge.predict(song["smeared"]) == JAZZ)
    return {"accuracy": {key: float(np.mean(value)) for key, value in right.items()},
            "flipped": {key: float(np.mean(value)) for key, value in flips.items()},
            "pop_classified_jazz": {key: float(np.mean(value)) for key, value in pop_rates.items()},
            "chunks": len(right["clean"]) // seeds, "seeds": seeds, "folds": folds_count}


def markdown(figures: dict, songs: dict[str, int]) -> str:
    """judge.md: the figures as tables."""
    lines = [f"# The judge, cross-validated by song over {songs['pop']} pop and {songs['jazz']} jazz songs", "",
             f"{figures['folds']} folds by song x {figures['seeds']} seeds; {figures['chunks']} held-out chunks per "
             f"seed.", "",
             "| held-out chunks | accuracy |", "|---|---:|",
             f"| clean | {figures['accuracy']['clean']:.0%} |",
             f"| through random recording channels | {figures['accuracy']['augmented']:.0%} |", "",
             "| held-out pop chunks | classified jazz |", "|---|---:|"]
    lines += [f"| {name} | {value:.0%} |" for name, value in figures["pop_classified_jazz"].items()]
    lines += ["", "| channel change alone | decisions flipped |", "|---|---:|"]
    lines += [f"| {name} | {value:.0%} |" for name, value in figures["flipped"].items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=Path, default=example_clips(), help="a folder with pop/ and jazz/ songs "
                        "(default: $POP2JAZZ_CLIPS, else ../shared/audio/gtzan_mini)")
    parser.add_argument("--seeds", type=int, default=3, help="cross-validation shuffles (default: 3)")
    parser.add_argument("--output", type=Path, default=Path("samples/judge"), help="default: samples/judge")
    args = parser.parse_args(argv)
    rep = Representation()
    paths = {label: find_audio_files(args.clips / name) for label, name in ((POP, "pop"), (JAZZ, "jazz"))}
    songs = [song_figures(path, label, rep, index) for label in (POP, JAZZ)
             for index, path in enumerate(tqdm(paths[label], desc="pop" if label == POP else "jazz", unit="song"))]
    songs = [song for song in songs if len(song["clean"])]  # songs shorter than one chunk have nothing to judge
    figures = cross_validate(songs, args.seeds, rep)
    text = markdown(figures, {"pop": len(paths[POP]), "jazz": len(paths[JAZZ])})
    print(text)
    atomic_write_bytes(args.output / "judge.md", text.encode())
    atomic_write_bytes(args.output / "judge.json", json.dumps(figures, indent=2).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
