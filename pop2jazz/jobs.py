"""What a conversion does, for convert.py and the browser page (app.py) alike: the songs to convert into which
outputs, everything that can fail checked before any work (plan), one song converted (run_job) and its
before/after picture (plot_conversion)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from pop2jazz.checkpoint import DIRECTIONS, describe, generator_from, load_checkpoint
from pop2jazz.conversion import AtReferenceLevel, convert_file, output_layout, with_strength
from pop2jazz.dataset import scan_folder
from pop2jazz.errors import InputError, WouldOverwriteError
from pop2jazz.output_files import (
    audio_bytes,
    audio_format,
    channels_suffix,
    check_writable,
    name_too_long,
    provenance_of,
)
from pop2jazz.plots import save_spectrograms
from pop2jazz.spectrogram import Representation, audio_samples, audio_to_image, load_audio

PLOT_SECONDS = 30  # of a song and its conversion, in the --plot picture
# how a song is converted unless convert.py is told otherwise; the browser page (app.py) converts so too
GRIFFIN_LIM_ITERS, OVERLAP, BATCH_SIZE = 32, 0.25, 4


@dataclasses.dataclass(frozen=True)
class ConversionOptions:
    """How songs are converted and where the outputs go: convert.py's options (see its --help), which the browser
    page sets too. The defaults are convert.py's.

    songs: files, or folders searched recursively; output: the output file of one song (None: named after it,
    see output_path_for); output_dir: where every output goes (None: beside each song); format: the extension of
    the outputs named here. griffin_lim_iters (>= 0), overlap (in [0, 1), of a window shared with the next) and
    batch_size (windows per generator call) as conversion.convert_file takes them; bf16, mono and keep_high_band
    likewise; strength (in [0, 1]) how far to convert, as conversion.AtStrength blends. overwrite replaces
    existing outputs; plot also writes <output>.png; allow_converted also converts files the tools wrote; verbose
    names a folder's files that are not audio.
    """

    songs: tuple[Path, ...]
    direction: str = "pop2jazz"
    output: Path | None = None
    output_dir: Path | None = None
    format: str = "wav"
    griffin_lim_iters: int = GRIFFIN_LIM_ITERS
    overlap: float = OVERLAP
    batch_size: int = BATCH_SIZE
    bf16: bool = False
    strength: float = 1.0
    mono: bool = False
    keep_high_band: bool = True
    overwrite: bool = False
    plot: bool = False
    allow_converted: bool = False
    verbose: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ConversionOptions:
        """The options among convert.py's parsed arguments (the others, such as --device, are not a job's)."""
        values = {field.name: getattr(args, field.name) for field in dataclasses.fields(cls)}
        return cls(**values | {"songs": tuple(values["songs"])})


@dataclasses.dataclass
class LoadedGenerator:
    """The generator of one direction of a CycleGAN checkpoint, ready to convert."""

    generator: torch.nn.Module  # in eval mode
    rep: Representation  # what it was trained on: conversion undoes exactly that
    checkpoint: Path
    description: str  # checkpoint.describe's: which model it is, for the user


def load_model(checkpoint: Path, direction: str, device: torch.device | str = "cpu",
               level_match: bool | None = None) -> LoadedGenerator:
    """The `direction` generator of the train.py checkpoint (or generators.pt export) at `checkpoint`, with its
    windows brought to the checkpoint's reference level as its config says, or as `level_match` says when given.

    Raises MissingFileError / CheckpointError / InputError as checkpoint.load_checkpoint and generator_from do.
    """
    state = load_checkpoint(checkpoint, device, "cyclegan")
    rep = Representation.from_dict(state["representation"])
    generator = generator_from(state, direction, device, checkpoint, level_match)
    description = describe(checkpoint, state)
    if isinstance(generator, AtReferenceLevel):
        description += f", every window at its reference level ({generator.reference_db:.1f} dB)"
    return LoadedGenerator(generator, rep, Path(checkpoint), description)


@dataclasses.dataclass
class Job:
    """One song to convert into `output`; `found` when it came from a folder rather than by name."""

    song: Path
    output: Path
    found: bool = False


def output_path_for(song: Path, direction: str, extension: str = "wav", folder: Path | None = None) -> Path:
    """song.mp3 -> song_jazz.wav (pop2jazz) or song_pop.wav (jazz2pop), in `folder` (default: beside the song)."""
    return (song.parent if folder is None else folder) / f"{song.stem}_{DIRECTIONS[direction][1]}.{extension}"


def check_output(song: Path, output: Path, overwrite: bool) -> None:
    """Raise FileExistsError when writing `output` would replace `song` (also through a link) or, unless
    `overwrite`, any existing file."""
    same = output.resolve() == song.resolve() or (output.exists() and song.exists() and os.path.samefile(output, song))
    if same:
        raise WouldOverwriteError(f"{output} is the input song: refusing to write over it; pass another -o")
    if output.exists() and not overwrite:
        raise WouldOverwriteError(f"{output} exists: pass --overwrite to replace it, or -o to write elsewhere")


def collect_jobs(options: ConversionOptions) -> tuple[list[Job], list[str]]:
    """The songs the command line names, folders searched recursively in name order, each with its output:
    (jobs, notes for the user; -v names a folder's files that are not audio). A folder's sub-folders are mirrored
    below --output-dir."""
    jobs, notes = [], []
    for given in options.songs:
        if not given.is_dir():
            folder = options.output_dir or given.parent
            jobs.append(Job(given, options.output or output_path_for(given, options.direction, options.format, folder)))
            continue
        scan = scan_folder(given)
        notes += scan.notes(given, options.verbose)
        for song in scan.audio:
            folder = song.parent if options.output_dir is None else options.output_dir / song.parent.relative_to(given)
            jobs.append(Job(song, output_path_for(song, options.direction, options.format, folder), found=True))
    return jobs, notes


def clashes(jobs: list[Job]) -> list[list[Job]]:
    """The groups of jobs that would write one output file."""
    by_output: dict[str, list[Job]] = {}
    for job in jobs:
        by_output.setdefault(os.path.normcase(os.path.abspath(job.output)), []).append(job)
    return [group for group in by_output.values() if len(group) > 1]


def separate_clashes(jobs: list[Job], direction: str) -> None:
    """Give songs that would write the same output (song.mp3 and song.ogg -> song_jazz.wav) outputs named after
    their whole file name instead (song.mp3_jazz.wav, song.ogg_jazz.wav). Raises InputError, before any work,
    when outputs still clash (the same name in two folders converted into one --output-dir)."""
    for group in clashes(jobs):
        for job in group:
            job.output = job.output.with_name(f"{job.song.name}_{DIRECTIONS[direction][1]}{job.output.suffix}")
    for group in clashes(jobs):
        raise InputError(f"{', '.join(str(job.song) for job in group)} would all be written to {group[0].output}: "
                         f"convert them into separate --output-dir folders, or one at a time with -o")


@dataclasses.dataclass
class Converted:
    """What converting one song took and gave (see run_job)."""

    seconds: float  # of audio converted
    gain: float  # applied to keep it below full scale: 1.0 when none
    elapsed: float  # wall-clock seconds the conversion took
    warnings: list[str]  # e.g. a truncated input, used as far as it could be read
    sample_rate: int  # of the output, Hz
    channels: int  # of the output

    def summary(self, job: Job) -> str:
        """One line: 'song -> output: 29.6 s at 22050 Hz in 4.1 s (7.2x real time)' (a mono output at the model's
        rate; else '... at 44100 Hz stereo ...'), with the gain when scaled."""
        note = f", scaled by {self.gain:.2f} ({20 * np.log10(self.gain):.1f} dB) to avoid clipping" \
            if self.gain < 1.0 else ""
        return (f"{job.song} -> {job.output}: {self.seconds:.1f} s at {self.sample_rate} Hz"
                f"{channels_suffix(self.channels)} in "
                f"{self.elapsed:.1f} s ({self.seconds / self.elapsed:.1f}x real time){note}")


def run_job(generator: torch.nn.Module, job: Job, rep: Representation, options: ConversionOptions,
            provenance: dict) -> Converted:
    """Convert `job.song` into `job.output` with conversion.convert_file (streaming, atomic, stamped with
    `provenance`), with a progress bar over the song's seconds (tqdm, on stderr).

    Uses the options overwrite, griffin_lim_iters, overlap, batch_size, bf16, strength, mono and keep_high_band.
    Our warnings (a truncated song: UserWarning) are collected, not printed. Raises FileExistsError when the
    output is there (check_output), AudioError when the song cannot be read, OutputError when the output cannot
    be written; no output is left.
    """
    start = time.perf_counter()
    check_output(job.song, job.output, options.overwrite)
    generator = with_strength(generator, options.strength)
    if options.strength != 1.0:
        provenance = {**provenance, "strength": options.strength}
    sample_rate, channels = output_layout(job.song, rep, options.mono)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        seconds, gain = convert_file(generator, job.song, job.output, rep, options.griffin_lim_iters, options.overlap,
                                     options.batch_size, progress=True, bf16=options.bf16, provenance=provenance,
                                     mono=options.mono, keep_high_band=options.keep_high_band,
                                     replace=options.overwrite)
    ours = [warning for warning in caught if issubclass(warning.category, UserWarning)]
    for other in caught:  # the interpreter's own (a ResourceWarning of a library): back to the usual filters
        if other not in ours:
            warnings.warn_explicit(other.message, other.category, other.filename, other.lineno)
    return Converted(seconds, gain, time.perf_counter() - start, [str(warning.message) for warning in ours],
                     sample_rate, channels)


def output_name_error(job: Job) -> str | None:
    """The error line for a song whose output name is longer than its folder takes (checked before anything asks
    the disk about that name, which fails with 'File name too long'); None when it fits."""
    reason = name_too_long(job.output)
    if reason is None:
        return None
    how = "convert it alone with -o and a shorter name" if job.found else "pass -o with a shorter name"
    return f"{job.song}: cannot write its output {job.output.name}: {reason}; {how}"


def plan(options: ConversionOptions, rep: Representation) -> tuple[list[Job], list[str]]:
    """The conversions to run and, per song that cannot be converted, an error line: (jobs, errors). Notes (what
    is skipped and why) are printed. Checks everything that can fail before any work: songs the tools wrote
    themselves (refused, or skipped in folders, unless --allow-converted), outputs that clash, exist or replace
    an input, extensions libsndfile cannot write at the output's sample rate and channels (conversion.output_layout
    with the model's `rep`), and folders that cannot take the outputs.
    Uses the options songs, output, output_dir, format, direction, allow_converted, overwrite, plot and mono.

    Raises InputError / OutputFormatError / OutputError / MissingFileError for what stops every conversion.
    """
    jobs, notes = collect_jobs(options)
    errors, songs, ours, done, kept = [], [], [], [], []
    for job in jobs:
        made_by = None if options.allow_converted else provenance_of(job.song)
        if not job.song.is_file():
            errors.append(f"{job.song}: no such file or folder")
        elif made_by is not None and job.found:
            ours.append(job.song)
        elif made_by is not None:
            errors.append(f"{job.song} was written by pop2jazz ({made_by.get('tool')}, from {made_by.get('input')}): "
                          f"converting the tool's own output again makes a copy of a copy; pass --allow-converted "
                          f"to do it anyway")
        else:
            songs.append(job)
    separate_clashes(songs, options.direction)
    inputs = {os.path.abspath(job.song) for job in songs}
    for job in songs:
        if (too_long := output_name_error(job)) is not None:
            errors.append(too_long)
        elif os.path.abspath(job.output) in inputs:
            errors.append(f"{job.output} is one of the songs to convert: refusing to write over it; "
                          "pass -o with another file name")
        elif job.found and job.output.exists() and not options.overwrite and provenance_of(job.output) is not None:
            done.append(job.song)
        else:
            kept.append(job)
    if ours:
        notes.append(f"note: {len(ours)} file(s) written by pop2jazz itself skipped (--allow-converted converts them "
                     f"too): {', '.join(map(str, ours))}")
    if done:
        notes.append(f"note: {len(done)} song(s) converted before: their outputs are there (--overwrite redoes them)")
    if options.plot:  # the picture beside an output is as safe from overwriting as the output itself
        taken = [job for job in kept if job.output.with_suffix(".png").exists() and not options.overwrite]
        errors += [f"{job.output.with_suffix('.png')} exists: pass --overwrite to replace it, or leave out --plot"
                   for job in taken]
        kept = [job for job in kept if job not in taken]
    layouts = {job.song: output_layout(job.song, rep, options.mono) for job in kept}  # (sample_rate, channels)
    for job in kept:
        audio_format(job.output, *layouts[job.song])
    needs: dict[Path, int] = {}
    for job in kept:
        sample_rate, channels = layouts[job.song]
        needs[job.output.parent] = needs.get(job.output.parent, 0) + \
            audio_bytes(audio_samples(job.song, sample_rate) * channels)
    for folder, size in needs.items():
        check_writable(folder, size, "pass -o or --output-dir with a writable place")
    for note in notes:
        print(note, file=sys.stderr)
    return kept, errors


def plot_conversion(job: Job, rep: Representation, direction: str) -> Path:
    """<output>.png: the spectrograms of the song and of its conversion, their first PLOT_SECONDS, one above the
    other, written atomically; returns its path."""
    samples = PLOT_SECONDS * rep.sample_rate
    before, after = (load_audio(path, rep.sample_rate)[:samples] for path in (job.song, job.output))
    picture = job.output.with_suffix(".png")
    save_spectrograms({f"{job.song.name} (input)": audio_to_image(before, rep),
                       f"{job.output.name} ({direction}, as written)": audio_to_image(after, rep)}, rep, picture)
    return picture
