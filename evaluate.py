"""Measure a checkpoint: does its pop -> jazz conversion sound like jazz, is it still the song, how well does it invert?

    uv run evaluate.py                                  # the run pop2jazz, on the held-out pop songs of data/pop_val
    uv run evaluate.py --name demo                      # the run trained with train.py --name demo
    uv run evaluate.py --checkpoint run/latest.pt --data /tmp/d my_song.wav other.flac -o out/eval

- The headline judge, a pretrained tagger (musicnn's MSD model, Pons & Serra 2019, pop2jazz/tagger.py), never
  trained on this project's data: each 5.94 s chunk brought to -20 dBFS RMS, its mean P(jazz), the share of its
  3 s patches it hears as more jazz than pop, and the KID (kernel inception distance, Binkowski et al. 2018) of
  its embeddings to the held-out real jazz, for the conversion beside the same baselines as below (the pop, the
  EQ to jazz, the smeared pop, the real jazz). A judge only: nothing in training reads it. Its verdicts, the
  report's headline, warn when the tagger cannot tell the real jazz from the pop, or when the conversion does not
  beat the pop, the EQ baseline or the smeared pop, or is no nearer the jazz by KID than the EQ baseline.
- Style transfer rate, the second opinion: a jazz-vs-pop genre classifier (judge.py: scikit-learn logistic regression on
  channel-robust librosa statistics of each 5.94 s chunk: the spread in time of MFCCs and log-mel bands, the
  rhythm, the harmonic-to-percussive ratio), trained on the training songs, each also through random recording
  channels (tilt, low-pass, loudness, noise, compression, Vorbis / MP3, reverb), and scored by cross-validation
  grouped by song, classifies every chunk of the converted songs. Reported side by side with the unconverted
  songs (the pop baseline), the songs at the conversion's level alone, the "EQ to jazz" baseline (each pop chunk
  equalised to the jazz training set's long-term spectrum: the recording channel alone, channel.py), the songs
  smeared in time over 0.1 s (blur alone) and the held-out jazz songs (the ceiling).
- The classifier's verdicts, in words: when it calls under 80 % of the real jazz it was given jazz, or the
  conversion does not beat the EQ baseline, the report says that its figure cannot tell jazz from the recording
  sound of the training set; also when the conversion does not beat the smeared pop or scores above the real
  jazz, when the EQ baseline alone moves the pop by 25 points or more, and when songs it measures are the
  judge's training songs.
  The judge's robustness is measured on the held-out songs too: the share of its decisions that each channel
  change alone flips. The judge of a data split is trained once and kept in ~/.cache/pop2jazz/judge
  ($POP2JAZZ_CACHE; "off" keeps nothing), under a key of the songs' bytes, the settings and the judge's code.
- Content preservation: chroma cosine similarity between each input chunk and its conversion (and its EQ
  baseline), next to the similarity of unrelated pop and jazz chunks (the floor).
- Inversion quality: spectral convergence (dB, lower is better) between the generated magnitude and the STFT
  magnitude of the audio written from it, for librosa.griffinlim (random initial phase), Griffin-Lim from the
  song's own phase (what convert.py does) and the song's phase alone; with the seconds each took.
- Artefacts: the checkerboard measure, power at the image's highest spatial frequencies in the generated
  spectrogram relative to the input's (dB; 0 = none added); the holes: the share of the song's loud cells
  (100 Hz-8 kHz, within 30 dB of their frame's loudest) that the conversion lowers by more than 30 dB, and the
  share of frames losing more than 12 dB; the same on each song made a loud modern master (compressed 6:1 and
  brought to -9 dBFS RMS, channel.loud_master), next to what the EQ baseline does there.
- --strength S and --level-match measure the model as convert.py runs it with those options.

Writes report.md, figures.json, PNGs and the converted WAVs (their metadata saying evaluate.py made them) to
samples/NAME/eval/ (samples/eval_<checkpoint stem>/ with --checkpoint, or --output).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from pop2jazz.audio_files import AudioError
from pop2jazz.channel import eq_to_jazz, loud_master, rms_dbfs
from pop2jazz.checkpoint import generator_from, load_checkpoint, reference_to_match
from pop2jazz.commands import float_range, non_negative_int, run_command
from pop2jazz.compute import pick_device
from pop2jazz.conversion import convert_magnitude, with_strength
from pop2jazz.dataset import ChunkFolder, cut_song, listed_songs
from pop2jazz.errors import InputError
from pop2jazz.evaluation_report import write_report
from pop2jazz.judge import (
    TAGGER_LABELS,
    GenreClassifier,
    cached_judge,
    features_of,
    tagger_verdicts,
    transfer_figures,
    verdicts,
)
from pop2jazz.metrics import (
    INVERSIONS,
    checkerboard_power,
    chroma_similarity,
    holes,
    inversion_quality,
    invert,
    level_changes,
    level_matched,
    time_smeared,
)
from pop2jazz.output_files import audio_bytes, check_writable, name_too_long, output_lock, write_audio
from pop2jazz.runs import SAMPLES, add_checkpoint_options, find_checkpoint
from pop2jazz.spectrogram import (
    Representation,
    audio_samples,
    audio_to_image,
    image_to_magnitude,
    istft,
    load_audio,
    magnitude_to_image,
    split_chunks,
    stft,
)
from pop2jazz.tagger import Tagger, kernel_inception_distance

REPORT_BYTES = 1 << 20  # figures.json, report.md and a PNG per song and for the metrics, a generous bound each

def evaluate_song(generator: torch.nn.Module, audio: np.ndarray, rep: Representation, classifier: GenreClassifier,
                  n_iter: int = 32, seed: int = 0) -> dict:
    """Convert one pop song (mono audio [samples] at rep.sample_rate, at least one chunk long) and measure it.

    Returns {"seconds": song length, "chunks", "input", "generated", "written", "level_matched", "eq_baseline",
    "smeared" (chunk images [n, n_bins, chunk_frames] of the input, the generator's output, the re-analysed
    written audio, the input at the output's level, metrics.level_matched, the input equalised to the
    classifier's jazz training spectrum, channel.eq_to_jazz, and the input blurred in time, metrics.time_smeared),
    "level_change_db" (each chunk's, [n] dB), "audio" (the written audio [samples], source-phase Griffin-Lim),
    "jazz_probability" {"input", "generated", "written", "level_matched", "eq_baseline", "smeared": [n]},
    "is_jazz" (the same, bool), "chunk_audio" {"input", "written": the song's and the written audio cut at the
    chunks, "level_matched", "eq_baseline", "smeared": those chunk images with the input's phase, inverse STFT:
    lists of [chunk_samples] arrays, for the tagger}, "chroma_similarity" {"generated", "written", "eq_baseline":
    [n]}, "inversion" (see `inversion_quality`), "holes" (metrics.holes of the written audio), "loud_holes" (the
    same for the song made loud, `loud_song_holes`), "loud_holes_baselines" (the EQ baseline's and the smear
    control's, `loud_baseline_holes`)}.
    """
    if len(audio) < rep.chunk_samples:
        raise InputError(f"{len(audio) / rep.sample_rate:.2f} s is shorter than one chunk ({rep.chunk_seconds:.2f} s)")
    magnitude, spectrum = convert_magnitude(generator, audio, rep)
    inversions = invert(magnitude, spectrum.angle(), len(audio), rep, n_iter, seed)
    written = inversions["source_phase_griffin_lim"][0]
    images = {"input": magnitude_to_image(spectrum.abs(), rep), "generated": magnitude_to_image(magnitude, rep),
              "written": audio_to_image(written, rep)}
    chunks = {name: split_chunks(image, rep) for name, image in images.items()}
    level_change = level_changes(chunks["input"], chunks["generated"], rep)
    chunks["level_matched"] = level_matched(chunks["input"], level_change, rep)
    chunks["eq_baseline"] = eq_to_jazz(chunks["input"], classifier.jazz_spectrum_db, rep)
    chunks["smeared"] = time_smeared(chunks["input"], rep=rep)
    features = {name: features_of(chunk, rep) for name, chunk in chunks.items()}
    phase = spectrum.angle()
    chunk_audio = {"input": cut_audio(audio, rep), "written": cut_audio(written, rep)[:len(chunks["input"])],
                   **{name: chunks_as_audio(chunks[name], phase, rep) for name in ("level_matched", "eq_baseline",
                                                                                  "smeared")}}
    loud = loud_master(audio, rep)  # one loud master, heard by the generator and by the baselines alike
    return {
        "seconds": len(audio) / rep.sample_rate, "chunks": len(chunks["input"]), **chunks, "audio": written,
        "chunk_audio": chunk_audio,
        "level_change_db": level_change,
        "jazz_probability": {name: classifier.jazz_probability(value) for name, value in features.items()},
        "is_jazz": {name: classifier.is_jazz(value) for name, value in features.items()},
        "chroma_similarity": {name: np.array([chroma_similarity(a, b, rep) for a, b in zip(chunks["input"],
                                                                                              chunks[name])])
                              for name in ("generated", "written", "eq_baseline")},
        "inversion": inversion_quality(magnitude, inversions, rep),
        "holes": holes(images["input"], images["written"], rep),
        "loud_holes": loud_song_holes(generator, loud, rep, n_iter, seed),
        "loud_holes_baselines": loud_baseline_holes(loud, rep, classifier.jazz_spectrum_db),
    }


def loud_song_holes(generator: torch.nn.Module, loud: np.ndarray, rep: Representation, n_iter: int = 32,
                    seed: int = 0) -> dict:
    """The holes test on a loud modern master: the song through channel.loud_master (compressed 6:1, at -9 dBFS
    RMS; mono audio [samples]), converted as convert.py does (Griffin-Lim from its phase) -> metrics.holes of its
    written audio against it, with "rms_dbfs", the loud song's RMS."""
    magnitude, spectrum = convert_magnitude(generator, loud, rep)
    written = invert(magnitude, spectrum.angle(), len(loud), rep, n_iter, seed)["source_phase_griffin_lim"][0]
    return {**holes(magnitude_to_image(spectrum.abs(), rep), audio_to_image(written, rep), rep),
            "rms_dbfs": rms_dbfs(loud)}


def loud_baseline_holes(loud: np.ndarray, rep: Representation, jazz_spectrum_db: np.ndarray) -> dict:
    """The holes test of the trivial baselines on the loud master `loud_song_holes` converts (channel.loud_master's
    mono audio [samples]) -> {"eq_baseline": channel.eq_to_jazz to `jazz_spectrum_db` ([n_bins] dB), "smear_control":
    metrics.time_smeared}, each metrics.holes (with "rms_dbfs") of its audio (the chunk images with the loud
    song's phase, inverse STFT, as the tagger hears them) against the loud song's whole chunks.

    The mark a conversion's figure stands beside: an equaliser that darkens a bright, loud mix by more than
    30 dB in a band makes holes of its own."""
    spectrum = stft(torch.from_numpy(loud), rep)
    chunks = split_chunks(magnitude_to_image(spectrum.abs(), rep), rep)
    source, phase, level = torch.cat(list(chunks), dim=-1), spectrum.angle(), rms_dbfs(loud)
    figures = {}
    for name, images in (("eq_baseline", eq_to_jazz(chunks, jazz_spectrum_db, rep)),
                         ("smear_control", time_smeared(chunks, rep=rep))):
        heard = np.concatenate(chunks_as_audio(images, phase, rep))
        figures[name] = {**holes(source, audio_to_image(heard, rep)[:, :source.shape[-1]], rep), "rms_dbfs": level}
    return figures


def cut_audio(audio: np.ndarray, rep: Representation) -> list[np.ndarray]:
    """Audio [samples] -> the samples of each whole chunk, [chunk_samples] each (chunk i: frames i * chunk_frames
    onwards, centred frames, so samples i * chunk_samples onwards); the tail is dropped."""
    return [np.asarray(audio[start:start + rep.chunk_samples], dtype=np.float32)
            for start in range(0, len(audio) - rep.chunk_samples + 1, rep.chunk_samples)]


def chunk_from_image(image: torch.Tensor, phase: torch.Tensor, rep: Representation) -> np.ndarray:
    """A chunk image [n_bins, chunk_frames] with the input's phase [n_fft//2 + 1, chunk_frames] -> its audio
    [chunk_samples] by the inverse STFT: the image rows (level control, EQ baseline, smear) as sound, for the
    tagger."""
    magnitude = image_to_magnitude(torch.as_tensor(image, dtype=torch.float32), rep)
    return istft(torch.polar(magnitude, phase[:, :magnitude.shape[1]].float()), rep.chunk_samples, rep).numpy()


def chunks_as_audio(images: torch.Tensor, phase: torch.Tensor, rep: Representation) -> list[np.ndarray]:
    """Chunk images [n, n_bins, chunk_frames] cut from a song whose phase is `phase` [n_fft//2 + 1, frames] ->
    each chunk's audio, [chunk_samples] each (`chunk_from_image` with the phase of that chunk's frames)."""
    return [chunk_from_image(image, phase[:, index * rep.chunk_frames:(index + 1) * rep.chunk_frames], rep)
            for index, image in enumerate(images)]


TAGGER_ROWS = {"pop_baseline": "input", "level_control": "level_matched", "eq_baseline": "eq_baseline",
               "smear_control": "smeared", "converted": "written"}  # summarise's row -> evaluate_song's chunk_audio


def tagger_figures(results: dict[Path, dict], jazz_audio: list[np.ndarray], tagger: Tagger,
                   rep: Representation) -> dict:
    """The pretrained tagger's figures: each row of TAGGER_ROWS and the real jazz ("jazz_ceiling"), every chunk at
    tagger.level_dbfs -> {"level_dbfs", "model", "rows": {row: TaggerFigures.summary()}, "kid": {row: KID of its
    patches' penultimate embeddings to the real jazz's}}."""
    heard = {row: tagger.figures([chunk for result in results.values() for chunk in result["chunk_audio"][name]],
                                 rep.sample_rate) for row, name in TAGGER_ROWS.items()}
    heard["jazz_ceiling"] = tagger.figures(jazz_audio, rep.sample_rate)
    jazz = heard["jazz_ceiling"].embeddings
    return {"level_dbfs": tagger.level_dbfs,
            "model": "musicnn MSD_musicnn (Pons & Serra 2019), PyTorch port, pretrained/musicnn_msd.pt",
            "rows": {row: figures.summary() for row, figures in heard.items()},
            "kid": {row: kernel_inception_distance(figures.embeddings, jazz) for row, figures in heard.items()
                    if row != "jazz_ceiling"}}


def pooled_holes(songs: list[dict]) -> dict:
    """metrics.holes of several songs (each with "rms_dbfs") pooled as if they were one: the shares weighted by
    each song's loud cells and frames, the RMS averaged in dB."""
    cells, frames = sum(song["loud_cells"] for song in songs), sum(song["frames"] for song in songs)
    return {"loud_cells_dropped": sum(song["loud_cells_dropped"] * song["loud_cells"] for song in songs)
            / max(cells, 1),
            "frames_losing": sum(song["frames_losing"] * song["frames"] for song in songs) / max(frames, 1),
            "loud_cells": cells, "frames": frames, "rms_dbfs": float(np.mean([song["rms_dbfs"] for song in songs]))}


def summarise(results: dict[Path, dict], jazz_chunks: torch.Tensor, classifier: GenreClassifier,
              rep: Representation, tagger: Tagger | None = None, jazz_audio: list[np.ndarray] | None = None) -> dict:
    """The figures of a run: per-song `evaluate_song` results and the held-out jazz chunks -> plain values; with
    `tagger` and the jazz songs' chunk audio, the tagger's figures too (and the verdicts rest on them)."""
    def pooled(key: str, name: str) -> np.ndarray:
        return np.concatenate([result[key][name] for result in results.values()])

    def transfer(name: str) -> dict:
        is_jazz = pooled("is_jazz", name)
        return {"jazz_rate": float(is_jazz.mean()), "jazz_probability": float(pooled("jazz_probability", name).mean()),
                "chunks": len(is_jazz)}

    inputs = torch.cat([result["input"] for result in results.values()])
    floor = [chroma_similarity(pop, jazz, rep) for pop in inputs for jazz in jazz_chunks]
    inversion = {name: {"spectral_convergence_db": float(np.mean([r["inversion"][name]["spectral_convergence_db"]
                                                                   for r in results.values()])),
                        "seconds": float(sum(r["inversion"][name]["seconds"] for r in results.values())),
                        "method": INVERSIONS[name]} for name in INVERSIONS}
    style_transfer = {"pop_baseline": transfer("input"), "level_control": transfer("level_matched"),
                      "eq_baseline": transfer("eq_baseline"), "smear_control": transfer("smeared"),
                      "converted": transfer("generated"),
                      "converted_audio": transfer("written"),
                      "jazz_ceiling": transfer_figures(classifier, features_of(jazz_chunks, rep))}
    heard = tagger_figures(results, jazz_audio or [], tagger, rep) if tagger is not None else None
    return {
        "tagger": heard,
        "classifier": classifier.summary(),
        "style_transfer": style_transfer,
        "verdicts": tagger_verdicts(heard) if heard is not None else verdicts(style_transfer),
        "classifier_verdicts": verdicts(style_transfer),
        "content": {"chroma_similarity": float(np.nanmean(pooled("chroma_similarity", "generated"))),
                    "chroma_similarity_audio": float(np.nanmean(pooled("chroma_similarity", "written"))),
                    "chroma_similarity_eq_baseline": float(np.nanmean(pooled("chroma_similarity", "eq_baseline"))),
                    "chroma_similarity_floor": float(np.nanmean(floor))},
        "inversion": inversion,
        "level_change_db": float(np.concatenate([result["level_change_db"] for result in results.values()]).mean()),
        "artefacts": {"checkerboard_db": 10 * np.log10(checkerboard_power(torch.cat([result["generated"] for result
                                                                                 in results.values()]))
                                                       / checkerboard_power(inputs)),
                      "holes": holes(*(torch.cat([chunk for result in results.values() for chunk in result[name]],
                                                 dim=-1) for name in ("input", "written")), rep),
                      "holes_loud_master": pooled_holes([result["loud_holes"] for result in results.values()]),
                      "holes_loud_master_baselines": {
                          name: pooled_holes([result["loud_holes_baselines"][name] for result in results.values()])
                          for name in ("eq_baseline", "smear_control")}},
        "audio_seconds": float(sum(result["seconds"] for result in results.values())),
        "songs": {str(song): {"chunks": result["chunks"], "seconds": result["seconds"],
                              "jazz_rate": float(result["is_jazz"]["generated"].mean()),
                              "jazz_rate_baseline": float(result["is_jazz"]["input"].mean()),
                              "jazz_rate_eq_baseline": float(result["is_jazz"]["eq_baseline"].mean()),
                              "chroma_similarity": float(np.nanmean(result["chroma_similarity"]["generated"])),
                              "holes": result["holes"],
                              "holes_loud_master": result["loud_holes"],
                              "inversion_db": {name: value["spectral_convergence_db"]
                                               for name, value in result["inversion"].items()}}
                  for song, result in results.items()},
    }


def not_held_out(songs: dict[str, list[Path]], training: list[Path]) -> list[dict]:
    """Verdict lines for songs to evaluate (`songs`: {"pop songs": [...], "jazz songs": [...]}) that the judge
    trained on: its figures on them are not those of held-out songs."""
    trained = {os.path.realpath(song) for song in training}
    found = []
    for name, paths in songs.items():
        seen = [path for path in paths if os.path.realpath(path) in trained]
        if seen:
            names = ", ".join(path.name for path in seen)
            found.append({"text": f"warning: {len(seen)} of the {len(paths)} {name} ({names}) are training songs"
                                  f" of the judge: its figures on them, and the robustness table, are not those "
                                  f"of held-out songs.", "warning": True})
    return found


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("songs", nargs="*", type=Path, help="pop songs to convert and measure (default: those listed in "
        "<data>/pop_val/representation.json)")
    add_checkpoint_options(parser)  # --name, --checkpoint
    add("--data", type=Path, default=Path("data"), help="audio_preprocessing.py output: the classifier trains on "
        "the songs listed in pop_train/ and jazz_train/ (default: data)")
    add("--jazz-songs", nargs="+", type=Path, help="real jazz for the ceiling and the chroma floor (default: those "
        "listed in <data>/jazz_val/representation.json)")
    add("-o", "--output", type=Path, help="report folder (default: samples/NAME/eval, or samples/eval_<checkpoint "
        "stem> with --checkpoint)")
    add("--griffin-lim-iters", type=non_negative_int, default=32, help="iterations of both Griffin-Lims (default: 32)")
    add("--seed", type=non_negative_int, default=0,
        help="cross-validation folds and librosa's random phase (default: 0)")
    add("--strength", type=float_range(0.0, 1.0), default=1.0, help="measure the conversion at convert.py "
        "--strength S (default: 1, the full conversion)")
    add("--level-match", action=argparse.BooleanOptionalAction, default=None, help="measure the conversion with "
        "(or without) every window brought to the checkpoint's reference level first (default: as the checkpoint "
        "was trained)")
    add("--device", default="auto", help="auto (CUDA when available), cpu or cuda (default: auto)")
    args = parser.parse_args(argv)
    args.output = args.output or (SAMPLES / args.name / "eval" if args.checkpoint is None else
                                  SAMPLES / f"eval_{args.checkpoint.stem}")
    return args


def evaluate(args: argparse.Namespace) -> int:
    """Measure the checkpoint as `args` say and write the report; see main() for the return codes."""
    checkpoint = find_checkpoint(args.name, args.checkpoint)
    device = pick_device(args.device)
    state = load_checkpoint(checkpoint, device, "cyclegan")
    generator = with_strength(generator_from(state, "pop2jazz", device, checkpoint, args.level_match),
                              args.strength)
    rep = Representation.from_dict(state["representation"])
    folders = {name: ChunkFolder(args.data / name) for name in ("pop_train", "jazz_train")}
    for folder in folders.values():
        if folder.representation != rep:
            raise InputError(f"{folder.folder} was made with other spectrogram settings than {checkpoint}: run "
                             f"audio_preprocessing.py with the checkpoint's settings, or pass --data")
    pop_songs = args.songs or listed_songs(args.data / "pop_val", "the songs to evaluate")
    for song in pop_songs:
        if (reason := name_too_long(args.output / f"{song.stem}_jazz.wav")) is not None:
            raise InputError(f"{song}: cannot write its conversion {song.stem}_jazz.wav into {args.output}: "
                             f"{reason}; evaluate a copy of it with a shorter name")
    jazz_songs = args.jazz_songs or listed_songs(args.data / "jazz_val", "--jazz-songs")
    check_writable(args.output, sum(audio_bytes(audio_samples(song, rep.sample_rate)) for song in pop_songs)
                   + REPORT_BYTES * (2 * len(pop_songs) + 3), "pass -o with a writable folder")
    with output_lock(args.output, "evaluate.py", "wait for it to finish, or pass another -o"):
        jazz_chunks = torch.cat([cut_song(song, rep)[0] for song in jazz_songs])
        if len(jazz_chunks) == 0:
            raise AudioError(f"the jazz songs {', '.join(map(str, jazz_songs))} are all shorter than one chunk "
                             f"({rep.chunk_seconds:.2f} s)")
        jazz_audio = [chunk for song in jazz_songs for chunk in cut_audio(load_audio(song, rep.sample_rate), rep)]
        tagger = Tagger()
        train_songs = {name: listed_songs(args.data / name, "--data with the training songs where they were") for name
                       in folders}
        classifier, robustness = cached_judge(train_songs["pop_train"], train_songs["jazz_train"], pop_songs,
                                              jazz_songs, rep, args.seed, progress=True)
        frames = 16  # the first calls pay for librosa's and torch's one-off set-up: keep that out of the timings
        invert(torch.ones(rep.n_fft // 2 + 1, frames), torch.zeros(rep.n_fft // 2 + 1, frames),
               (frames - 1) * rep.hop_length, rep, n_iter=1)
        results = {}
        for song in tqdm(pop_songs, desc="evaluating", unit="song"):
            audio = load_audio(song, rep.sample_rate)
            if len(audio) < rep.chunk_samples:
                raise AudioError(f"{song}: {len(audio) / rep.sample_rate:.2f} s is shorter than one chunk "
                                 f"({rep.chunk_seconds:.2f} s); evaluate longer songs")
            results[song] = evaluate_song(generator, audio, rep, classifier, args.griffin_lim_iters, args.seed)
            write_audio(args.output / f"{song.stem}_jazz.wav", results[song]["audio"], rep.sample_rate,
                        {"tool": "evaluate.py", "direction": "pop2jazz", "checkpoint": str(checkpoint),
                         "input": str(song)})
        figures = {"checkpoint": str(checkpoint), "epoch": state.get("epoch"), "model": state.get("model"),
                   "data": str(args.data), "representation": rep.to_dict(),
                   "griffin_lim_iters": args.griffin_lim_iters, "strength": args.strength,
                   "level_match": reference_to_match(state, args.level_match) is not None,
                   **summarise(results, jazz_chunks, classifier, rep, tagger, jazz_audio),
                   "robustness": robustness}
        figures["verdicts"] += not_held_out({"pop songs": pop_songs, "jazz songs": jazz_songs},
                                            train_songs["pop_train"] + train_songs["jazz_train"])
        write_report(figures, results, rep, args.output)
    transfer, heard = figures["style_transfer"], figures["tagger"]["rows"]
    print(f"tagger (musicnn MSD, every chunk at {figures['tagger']['level_dbfs']:g} dBFS RMS), mean P(jazz) / "
          f"P(pop) / share of 3 s patches P(jazz) > P(pop), KID to the real jazz:")
    for row, label in TAGGER_LABELS.items():
        kid = figures["tagger"]["kid"].get(row)
        print(f"  {label:<28} {heard[row]['jazz_probability']:.3f} / {heard[row]['pop_probability']:.3f} / "
              f"{heard[row]['jazz_over_pop']:4.0%}" + (f"   KID {kid:.3f}" if kid is not None else ""))
    print(f"second opinion, the 14-song classifier: cross-validated accuracy "
          f"{figures['classifier']['cv_accuracy']:.0%} "
          f"({figures['classifier']['cv_accuracy_augmented']:.0%} through random recording channels); classified "
          f"jazz: pop {transfer['pop_baseline']['jazz_rate']:.0%}, EQ-to-jazz baseline "
          f"{transfer['eq_baseline']['jazz_rate']:.0%}, smeared {transfer['smear_control']['jazz_rate']:.0%}, "
          f"converted {transfer['converted']['jazz_rate']:.0%}, "
          f"real jazz {transfer['jazz_ceiling']['jazz_rate']:.0%}; chroma similarity "
          f"{figures['content']['chroma_similarity']:.3f} generated, "
          f"{figures['content']['chroma_similarity_audio']:.3f} written audio "
          f"(floor {figures['content']['chroma_similarity_floor']:.3f})"
          f"\nreport: {args.output / 'report.md'}")
    for verdict in figures["verdicts"]:
        print(verdict["text"], file=sys.stderr if verdict["warning"] else sys.stdout)
    for verdict in figures["classifier_verdicts"]:
        print(f"second opinion (the 14-song classifier): {verdict['text']}",
              file=sys.stderr if verdict["warning"] else sys.stdout)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: 0 when the report is written, 1 on a user error (a missing, foreign or incomplete
    checkpoint, missing data or songs, an output folder that cannot be written), 130 / 143 when interrupted."""
    return run_command(evaluate, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
