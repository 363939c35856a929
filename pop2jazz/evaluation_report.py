"""The files evaluate.py writes: figures.json, report.md and its PNGs (spectrograms, chroma, a bar chart)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from pop2jazz.commands import printable
from pop2jazz.metrics import chroma, image_magnitude
from pop2jazz.output_files import atomic_write_bytes
from pop2jazz.plots import plt, save_figure, show_spectrogram
from pop2jazz.spectrogram import Representation

PANELS = {"input": "pop input", "generated": "generated spectrogram", "written": "written audio (re-analysed)"}
TRANSFER_ROWS = {"pop_baseline": "pop input (baseline)",
                 "level_control": "pop input at the converted level (control: loudness alone)",
                 "eq_baseline": "pop input, EQ to jazz (baseline: the recording channel alone)",
                 "smear_control": "pop input smeared in time over 0.1 s (control: blur alone)",
                 "converted": "converted: generated spectrogram",
                 "converted_audio": "converted: written audio", "jazz_ceiling": "real jazz (ceiling)"}
CHROMA_OF_ROW = {"eq_baseline": "chroma_similarity_eq_baseline",
                 "converted": "chroma_similarity", "converted_audio": "chroma_similarity_audio",
                 "jazz_ceiling": "chroma_similarity_floor"}  # the floor: unrelated pop and jazz chunks


def json_ready(value):
    """`value` with numpy scalars made Python numbers and NaN / inf made None, so the JSON is standard."""
    if isinstance(value, dict):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def chunks_side_by_side(chunks: torch.Tensor) -> np.ndarray:
    """Chunks [n, n_bins, chunk_frames] side by side in time -> [n_bins, n * chunk_frames]."""
    return torch.cat(list(chunks), dim=-1).numpy()


def plot_spectrograms(result: dict, rep: Representation, title: str, path: Path) -> None:
    """Input, generated and written-audio spectrograms of one song (dB re full scale), side by side."""
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.5), sharey=True, layout="constrained")
    for axis, (name, label) in zip(axes, PANELS.items()):
        probability = result["jazz_probability"][name].mean()
        image_artist = show_spectrogram(axis, chunks_side_by_side(result[name]), rep,
                                 f"{label}\nmean P(jazz) {probability:.2f}")
        axis.label_outer()
    figure.colorbar(image_artist, ax=axes, label="dB")
    figure.suptitle(title)
    save_figure(figure, path)


def plot_chroma(result: dict, rep: Representation, title: str, path: Path) -> None:
    """Chroma of the input, the generated spectrogram and the written audio of one song, side by side."""
    figure, axes = plt.subplots(1, 3, figsize=(15, 3.5), sharey=True, layout="constrained")
    for axis, (name, label) in zip(axes, PANELS.items()):
        values = chroma(image_magnitude(chunks_side_by_side(result[name]), rep), rep)
        extent = (0, values.shape[-1] * rep.hop_length / rep.sample_rate, -0.5, 11.5)
        axis.imshow(values, origin="lower", aspect="auto", extent=extent, cmap="gray_r", vmin=0, vmax=1,
                    interpolation="nearest")
        similarity = "" if name == "input" else \
            f"\nchroma similarity to input {np.nanmean(result['chroma_similarity'][name]):.3f}"
        axis.set(title=f"{label}{similarity}", xlabel="time (s)")
    axes[0].set(yticks=range(12), yticklabels=["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"])
    figure.suptitle(title)
    save_figure(figure, path)


def plot_metrics(figures: dict, path: Path) -> None:
    """Bar charts: fraction classified jazz and mean P(jazz); chroma similarity; inversion spectral convergence."""
    figure, axes = plt.subplots(1, 3, figsize=(18, 4.8), width_ratios=(1.7, 1, 1))
    transfer = figures["style_transfer"]
    positions = np.arange(len(TRANSFER_ROWS))
    for offset, key, label in ((-0.2, "jazz_rate", "classified jazz"), (0.2, "jazz_probability", "mean P(jazz)")):
        axes[0].bar(positions + offset, [transfer[row][key] for row in TRANSFER_ROWS], 0.4, label=label)
    axes[0].set(xticks=positions, ylim=(0, 1), title="style transfer",
                xticklabels=["pop", "pop at the\nconverted\nlevel", "pop, EQ\nto jazz", "pop,\nsmeared",
                             "converted\n(spectro-\ngram)", "converted\n(audio)", "real jazz"])
    axes[0].legend()
    content = figures["content"]
    axes[1].bar(["EQ to jazz", "converted\n(spectrogram)", "converted\n(audio)", "unrelated\npop/jazz\n(floor)"],
                [content["chroma_similarity_eq_baseline"], content["chroma_similarity"],
                 content["chroma_similarity_audio"], content["chroma_similarity_floor"]],
                color=["C7", "C0", "C0", "C7"])
    axes[1].set(ylim=(0, 1), title="content: chroma cosine similarity to the input")
    inversion = figures["inversion"]
    axes[2].bar(["librosa\ngriffinlim", "griffin_lim from\nsource phase", "source phase\nalone"],
                [inversion[name]["spectral_convergence_db"] for name in inversion], color="C2")
    axes[2].set(ylabel="dB (lower is better)", title="inversion: spectral convergence")
    figure.tight_layout()
    save_figure(figure, path)


def format_figure(value: float | None, form: str = ".3f") -> str:
    """`value` in the format spec `form` (e.g. ".1%"), or "n/a" for a figure that is missing, NaN or infinite."""
    return "n/a" if value is None or not math.isfinite(value) else format(value, form)


TAGGER_ROWS = {"pop_baseline": "pop input (baseline)",
               "level_control": "pop input at the converted level (control; the same once leveled)",
               "eq_baseline": "pop input, EQ to jazz (baseline: the recording channel alone)",
               "smear_control": "pop input smeared in time over 0.1 s (control: blur alone)",
               "converted": "**converted** (the written audio)", "jazz_ceiling": "real jazz, held out (ceiling)"}


def tagger_lines(heard: dict | None) -> list[str]:
    """The report's section on the pretrained tagger (evaluate.tagger_figures), the headline figures."""
    if not heard:
        return []
    lines = ["## The pretrained tagger (headline)", "",
             f"{heard['model']}: 50 Million Song Dataset tags, jazz and pop among them. Every chunk is brought to "
             f"**{heard['level_dbfs']:g} dBFS RMS** before it is heard (so loudness is not what it judges), resampled "
             f"to 16 kHz and cut into 3 s patches; the figures are over the patches. KID: kernel inception distance "
             f"(unbiased, cubic polynomial kernel) between the patches' penultimate-layer embeddings and the real "
             f"jazz's; lower is closer.", "",
             "| chunks | mean P(jazz) | mean P(pop) | patches P(jazz) > P(pop) | KID to the real jazz | patches |",
             "|---|---:|---:|---:|---:|---:|"]
    for key, label in TAGGER_ROWS.items():
        row = heard["rows"][key]
        kid = format_figure(heard["kid"][key], ".3f") if key in heard["kid"] else ""
        lines.append(f"| {label} | {format_figure(row['jazz_probability'])} | "
                     f"{format_figure(row['pop_probability'])} | {format_figure(row['jazz_over_pop'], '.0%')} | "
                     f"{kid} | {row['patches']} |")
    return lines + [""]


def markdown(figures: dict, images: dict[str, list[str]]) -> str:
    """report.md: the tables of `figures` (see evaluate.summarise) and links to the PNGs."""
    classifier, transfer = figures["classifier"], figures["style_transfer"]
    content, inversion = figures["content"], figures["inversion"]
    lines = [f"# Evaluation of `{figures['checkpoint']}` (epoch {figures['epoch']})", "",
             f"Model {figures['model']}; data `{figures['data']}`; {len(figures['songs'])} pop song(s), "
             f"{figures['audio_seconds']:.1f} s of audio, cut into {transfer['converted']['chunks']} chunks of "
             f"{figures['representation']['chunk_frames']} frames.", "",
             "## Verdict", "", *[verdict["text"] for verdict in figures["verdicts"]], "",
             *[f"Second opinion, the 14-song classifier: {verdict['text']}"
               for verdict in figures.get("classifier_verdicts", []) if figures.get("tagger")], "",
             *tagger_lines(figures.get("tagger")),
             "## Style transfer", "",
             "Second opinion: the genre classifier trained on the 14 training songs (see \"The judge\")." if
             figures.get("tagger") else "", "",
             "| chunks | classified jazz | mean P(jazz) | chroma similarity to the pop input | n |",
             "|---|---:|---:|---:|---:|"]
    for key, label in TRANSFER_ROWS.items():
        similarity = format_figure(content[CHROMA_OF_ROW[key]]) if key in CHROMA_OF_ROW else ""
        similarity = {"pop_baseline": "1.000", "jazz_ceiling": f"{similarity} (floor: unrelated chunks)"}.get(
            key, similarity)
        lines.append(f"| {label} | {format_figure(transfer[key]['jazz_rate'], '.1%')} | "
                     f"{format_figure(transfer[key]['jazz_probability'])} | {similarity} | {transfer[key]['chunks']} |")
    lines += ["", f"The conversion changes the level by {format_figure(figures['level_change_db'], '+.1f')} dB on "
              f"average; "
              f"the control row gives the pop songs that change of level alone, and the smeared row the pop blurred "
              f"in time, which the judge's features (the spectrum's spread in time) would also reward in a blurry "
              f"generator. The EQ-to-jazz baseline gives each "
              f"pop chunk the long-term spectrum of the jazz training chunks (a fixed equaliser, smooth over an "
              f"octave): it changes the recording channel and nothing else, so a conversion must beat it to show "
              f"more than an equaliser."]
    lines += ["", "## The judge", "",
              f"Genre classifier: {classifier['model']} on {classifier['features']} channel-robust librosa features "
              f"per chunk (the spread in time of MFCCs, their deltas and log-mel bands up to 8 kHz; the rhythm), "
              f"trained on {classifier['train_songs']['pop']} pop and {classifier['train_songs']['jazz']} jazz "
              f"training songs ({classifier['train_chunks']['pop']} + {classifier['train_chunks']['jazz']} chunks), "
              f"each also through {classifier['augment_draws']} random recording channels. Cross-validated "
              f"accuracy grouped by song: **{format_figure(classifier['cv_accuracy'], '.1%')}** on clean held-out "
              f"chunks "
              f"(± {format_figure(classifier['cv_accuracy_std'], '.1%')} over {classifier['cv_folds']} folds), "
              f"**{format_figure(classifier['cv_accuracy_augmented'], '.1%')}** on held-out chunks through random "
              f"recording channels."]
    robustness = figures.get("robustness")
    if robustness:
        chunks = robustness["chunks"]
        lines += ["", f"Robustness on the held-out songs ({chunks['pop']} pop and {chunks['jazz']} jazz chunks, "
                  f"{format_figure(robustness['clean_accuracy'], '.0%')} right as they are): the share of decisions "
                  f"each "
                  f"recording-channel change alone flips.", "",
                  "| channel change | pop flipped | jazz flipped | all flipped | accuracy |",
                  "|---|---:|---:|---:|---:|"]
        lines += [f"| {name} | {format_figure(value['pop_flipped'], '.0%')} | "
                  f"{format_figure(value['jazz_flipped'], '.0%')} | "
                  f"{format_figure(value['flipped'], '.0%')} | {format_figure(value['accuracy'], '.0%')} |"
                  for name, value in robustness["changes"].items()]
    lines += ["", "## Content preservation", "", "| chroma cosine similarity | mean |", "|---|---:|",
              f"| input vs EQ-to-jazz baseline | {format_figure(content['chroma_similarity_eq_baseline'])} |",
              f"| input vs converted (generated spectrogram) | {format_figure(content['chroma_similarity'])} |",
              f"| input vs converted (written audio) | {format_figure(content['chroma_similarity_audio'])} |",
              f"| unrelated pop vs jazz chunks (floor) | {format_figure(content['chroma_similarity_floor'])} |",
              "", "## Inversion quality", "",
              f"Spectral convergence between the generated magnitude and the STFT magnitude of the audio written "
              f"from it (lower is better); Griffin-Lim with {figures['griffin_lim_iters']} iterations.", "",
              "| method | spectral convergence (dB) | seconds |", "|---|---:|---:|"]
    lines += [f"| {value['method']} | {format_figure(value['spectral_convergence_db'], '.2f')} | "
              f"{format_figure(value['seconds'], '.2f')} |" for value in inversion.values()]
    lines += ["", "## Artefacts", "",
              f"Checkerboard: power at the image's highest spatial frequencies (period 2 along time, frequency and "
              f"both), generated spectrogram relative to the input: "
              f"**{format_figure(figures['artefacts']['checkerboard_db'], '+.1f')} dB** (0 dB: none added)."]
    if "holes" in figures["artefacts"]:
        holes = figures["artefacts"]["holes"]
        lines += ["", f"Holes: of the input's loud cells (100 Hz–8 kHz, within 30 dB of their frame's loudest), "
                  f"**{format_figure(holes['loud_cells_dropped'], '.1%')}** are lowered by more than 30 dB in the "
                  f"written audio, and {format_figure(holes['frames_losing'], '.1%')} of the frames lose more than "
                  f"12 dB of their loud cells' power (0 %: the loud parts all kept)."]
    if "holes_loud_master" in figures["artefacts"]:
        loud = figures["artefacts"]["holes_loud_master"]
        baselines = figures["artefacts"].get("holes_loud_master_baselines", {})
        lines += ["", f"Holes in a loud modern master (each song compressed 6:1 and brought to "
                  f"{format_figure(loud['rms_dbfs'], '.0f')} dBFS RMS, then converted): "
                  f"**{format_figure(loud['loud_cells_dropped'], '.1%')}** of its loud cells dropped, "
                  f"{format_figure(loud['frames_losing'], '.1%')} of its frames losing more than 12 dB"
                  + (" (each window brought to the model's reference level first)" if figures.get("level_match")
                     else "")
                  + "."]
        if baselines:
            lines += ["", "The trivial baselines on the same loud masters, loud cells dropped and frames losing more "
                      "than 12 dB: " + "; ".join(
                          f"{label} {format_figure(baselines[name]['loud_cells_dropped'], '.1%')} and "
                          f"{format_figure(baselines[name]['frames_losing'], '.1%')}"
                          for name, label in (("eq_baseline", "the EQ-to-jazz equaliser (it brings each chunk to "
                                               "the jazz's long-term spectrum, level included)"),
                                              ("smear_control", "the smeared pop")) if name in baselines) + "."]
    lines += ["", "## Songs", "", "| song | chunks | classified jazz (before → EQ → after) | chroma similarity | "
              "inversion dB (librosa / source-phase GL / phase) |", "|---|---:|---:|---:|---:|"]
    for song, value in figures["songs"].items():
        decibels = " / ".join(format_figure(db, ".1f") for db in value["inversion_db"].values())
        lines.append(f"| `{song}` | {value['chunks']} | {format_figure(value['jazz_rate_baseline'], '.0%')} → "
                     f"{format_figure(value['jazz_rate_eq_baseline'], '.0%')} → "
                     f"{format_figure(value['jazz_rate'], '.0%')} | "
                     f"{format_figure(value['chroma_similarity'])} | {decibels} |")
    lines += ["", "![metrics](metrics.png)", ""]
    for song, names in images.items():
        lines += [f"### `{Path(song).name}`", "", *[f"![{name}]({name})" for name in names], ""]
    return "\n".join(lines)


def write_report(figures: dict, results: dict, rep: Representation, output: Path) -> None:
    """Write figures.json, report.md, metrics.png and per song <stem>_spectrograms.png and <stem>_chroma.png."""
    output = Path(output)
    plot_metrics(figures, output / "metrics.png")
    figures = json_ready(figures)
    atomic_write_bytes(output / "figures.json", json.dumps(figures, indent=2, allow_nan=False).encode())
    images = {}
    for song, result in results.items():
        stem = Path(song).stem
        names = [f"{stem}_spectrograms.png", f"{stem}_chroma.png"]
        plot_spectrograms(result, rep, printable(Path(song).name), output / names[0])
        plot_chroma(result, rep, printable(Path(song).name), output / names[1])
        images[str(song)] = names
    atomic_write_bytes(output / "report.md", printable(markdown(figures, images)).encode())
