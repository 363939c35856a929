"""Turn songs into jazz (or jazz into pop) with a trained CycleGAN generator.

    uv run convert.py                               # the bundled example -> samples/example_jazz.wav and .png
    uv run convert.py song.wav                      # -> song_jazz.wav beside it, with checkpoints/pop2jazz/latest.pt
    uv run convert.py song.flac -o out/jazzy.flac --griffin-lim-iters 64
    uv run convert.py music/ --output-dir jazzed/ --format flac   # every song below music/, sub-folders mirrored
    uv run convert.py jazz.wav --direction jazz2pop --name demo   # the run trained with train.py --name demo

Any length, any format libsndfile reads. The song's spectrogram is cut into overlapping 512-frame windows, each
goes through the generator, and the windows are cross-faded back together; the audio is rebuilt by Griffin-Lim
starting from the song's own phase. The output is mono at the sample rate the checkpoint was trained with (22050 Hz
by default), exactly as long as the input, peak-normalised below full scale when it would clip, in the format of
its extension (16-bit WAV, FLAC, Ogg Vorbis, MP3, ...), and it says in its metadata that convert.py made it, from
which song and checkpoint: convert.py and audio_preprocessing.py then never take it for a song of yours. Songs are
streamed (conversion.py): memory stays the same for a 3-minute song and for an hour-long one.

The checkpoint is the run's (--name, default pop2jazz: checkpoints/pop2jazz/latest.pt) or --checkpoint's; without
either, the bundled model pretrained/pop2jazz.pt, trained on CPU on 14 GTZAN clips (pretrained/README.md). With no
song, it converts the bundled example (examples/, CC BY 3.0) into samples/example_jazz.wav with a before/after
spectrogram picture.
"""

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

from checkpoint import (DIRECTIONS, SAMPLES, add_checkpoint_options, describe, find_checkpoint, generator_from,
                        load_checkpoint)
from conversion import convert_file
from data import EXAMPLE_SONG, scan_folder
from outputs import audio_bytes, audio_format, check_writable, provenance_of, writable_extensions
from plots import save_spectrograms
from runtime import keep_freed_memory, pick_device, run_command
from spectrogram import AudioError, Representation, audio_samples, audio_to_image, load_audio


PLOT_SECONDS = 30  # of a song and its conversion, in the --plot picture


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
        raise FileExistsError(f"{output} is the input song: refusing to write over it; pass another -o")
    if output.exists() and not overwrite:
        raise FileExistsError(f"{output} exists: pass --overwrite to replace it, or -o to write elsewhere")


def collect_jobs(args: argparse.Namespace) -> tuple[list[Job], list[str]]:
    """The songs the command line names, folders searched recursively in name order, each with its output:
    (jobs, notes for the user). A folder's sub-folders are mirrored below --output-dir."""
    jobs, notes = [], []
    for given in args.songs:
        if not given.is_dir():
            folder = args.output_dir or given.parent
            jobs.append(Job(given, args.output or output_path_for(given, args.direction, args.format, folder)))
            continue
        scan = scan_folder(given)
        notes += scan.notes(given)
        for song in scan.audio:
            folder = song.parent if args.output_dir is None else args.output_dir / song.parent.relative_to(given)
            jobs.append(Job(song, output_path_for(song, args.direction, args.format, folder), found=True))
    return jobs, notes


def clashes(jobs: list[Job]) -> list[list[Job]]:
    """The groups of jobs that would write one output file."""
    by_output: dict[str, list[Job]] = {}
    for job in jobs:
        by_output.setdefault(os.path.normcase(os.path.abspath(job.output)), []).append(job)
    return [group for group in by_output.values() if len(group) > 1]


def separate_clashes(jobs: list[Job], direction: str) -> None:
    """Give songs that would write the same output (song.mp3 and song.ogg -> song_jazz.wav) outputs named after
    their whole file name instead (song.mp3_jazz.wav, song.ogg_jazz.wav). Raises ValueError, before any work,
    when outputs still clash (the same name in two folders converted into one --output-dir)."""
    for group in clashes(jobs):
        for job in group:
            job.output = job.output.with_name(f"{job.song.name}_{DIRECTIONS[direction][1]}{job.output.suffix}")
    for group in clashes(jobs):
        raise ValueError(f"{', '.join(str(job.song) for job in group)} would all be written to {group[0].output}: "
                         f"convert them into separate --output-dir folders, or one at a time with -o")


def plan(args: argparse.Namespace, sample_rate: int) -> tuple[list[Job], list[str]]:
    """The conversions to run and, per song that cannot be converted, an error line: (jobs, errors). Notes (what
    is skipped and why) are printed. Checks everything that can fail before any work: songs the tools wrote
    themselves (refused, or skipped in folders, unless --allow-converted), outputs that clash, exist or replace
    an input, extensions libsndfile cannot write at `sample_rate`, and folders that cannot take the outputs.

    Raises ValueError / OutputFormatError / OutputError / FileNotFoundError for what stops every conversion.
    """
    jobs, notes = collect_jobs(args)
    errors, songs, ours, done, kept = [], [], [], [], []
    for job in jobs:
        made_by = None if args.allow_converted else provenance_of(job.song)
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
    separate_clashes(songs, args.direction)
    inputs = {os.path.abspath(job.song) for job in songs}
    for job in songs:
        if os.path.abspath(job.output) in inputs:
            errors.append(f"{job.output} is one of the songs to convert: refusing to write over it; pass -o")
        elif job.found and job.output.exists() and not args.overwrite and provenance_of(job.output) is not None:
            done.append(job.song)
        else:
            kept.append(job)
    if ours:
        notes.append(f"note: {len(ours)} file(s) written by pop2jazz itself skipped (--allow-converted converts them "
                     f"too): {', '.join(map(str, ours))}")
    if done:
        notes.append(f"note: {len(done)} song(s) converted before: their outputs are there (--overwrite redoes them)")
    if args.plot:  # the picture beside an output is as safe from overwriting as the output itself
        taken = [job for job in kept if job.output.with_suffix(".png").exists() and not args.overwrite]
        errors += [f"{job.output.with_suffix('.png')} exists: pass --overwrite to replace it, or leave out --plot"
                   for job in taken]
        kept = [job for job in kept if job not in taken]
    for job in kept:
        audio_format(job.output, sample_rate)
    needs: dict[Path, int] = {}
    for job in kept:
        needs[job.output.parent] = needs.get(job.output.parent, 0) + audio_bytes(audio_samples(job.song, sample_rate))
    for folder, size in needs.items():
        check_writable(folder, size, "pass -o or --output-dir with a writable place")
    for note in notes:
        print(note, file=sys.stderr)
    return kept, errors


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("songs", nargs="*", type=Path, help="audio files, or folders searched recursively, to convert (default: the "
        "bundled example song, into samples/example_jazz.wav)")
    add("-o", "--output", type=Path, help="output file, its format from its extension (one song only; default: "
        "<song>_jazz.wav beside the input, <song>_pop.wav for jazz2pop)")
    add("--output-dir", type=Path, help="write every output into this folder (made as needed), a converted "
        "folder's sub-folders mirrored (default: beside each song)")
    add("--format", choices=writable_extensions(), default="wav", help="extension, and so format, of the outputs "
        "named by convert.py (default: wav)")
    add_checkpoint_options(parser)  # --name, --checkpoint
    add("--direction", choices=list(DIRECTIONS), default="pop2jazz", help="pop2jazz uses generator_ab, jazz2pop "
        "generator_ba (default: pop2jazz)")
    add("--griffin-lim-iters", type=int, default=32, help="Griffin-Lim iterations from the source phase; 0 keeps "
        "the source phase as it is (default: 32)")
    add("--overlap", type=float, default=0.25, help="fraction of a window shared with the next one, cross-faded "
        "(default: 0.25)")
    add("--batch-size", type=int, default=4, help="windows per generator call (default: 4)")
    add("--device", default="auto", help="auto (CUDA when available), cpu or cuda (default: auto)")
    add("--bf16", action="store_true", help="bf16 autocast on the CPU as on CUDA: about 2x faster where the CPU "
        "has AVX512-BF16 or AMX, output spectrograms move by about 0.5 dB")
    add("--compile", action="store_true", help="torch.compile the generator: about 20 %% faster after a start of "
        "half a minute; worth it for long songs or many")
    add("--overwrite", action="store_true", help="replace existing output files")
    add("--plot", action="store_true", help="also write <output>.png: the spectrograms of the song and of its "
        "conversion (their first 30 s), one above the other (always on for the bundled example)")
    add("--allow-converted", action="store_true", help="also convert files that convert.py (or training) wrote "
        "itself; by default they are refused, or skipped in folders")
    args = parser.parse_args(argv)
    args.example = not args.songs
    if args.example:
        args.songs = [EXAMPLE_SONG]
        args.output = args.output or SAMPLES / f"example_{DIRECTIONS[args.direction][1]}.{args.format}"
        args.plot = True
        made_by = provenance_of(args.output) if args.output.exists() else None
        args.overwrite = args.overwrite or (made_by or {}).get("input") == str(EXAMPLE_SONG)  # ours: redo it
    if args.output is not None and (len(args.songs) > 1 or args.songs[0].is_dir() or args.output_dir):
        parser.error("-o/--output takes one song; convert several songs or a folder with --output-dir")
    if not 0.0 <= args.overlap < 1.0:
        parser.error("--overlap must be in [0, 1)")
    return args


def convert(args: argparse.Namespace) -> int:
    """Convert the songs of the command line; 0 when every one was converted, else 1 (see main)."""
    checkpoint = find_checkpoint(args.name, args.checkpoint)
    device = pick_device(args.device)
    keep_freed_memory()
    state = load_checkpoint(checkpoint, device, "cyclegan")
    generator = generator_from(state, args.direction, device, checkpoint)
    rep = Representation.from_dict(state["representation"])
    print(f"using {describe(checkpoint, state)}")
    jobs, errors = plan(args, rep.sample_rate)
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    generator = torch.compile(generator, dynamic=True) if args.compile and jobs else generator  # any batch size
    provenance = {"tool": "convert.py", "direction": args.direction, "checkpoint": str(checkpoint)}
    failed = len(errors)
    for job in jobs:
        start = time.perf_counter()
        try:
            check_output(job.song, job.output, args.overwrite)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                seconds, gain = convert_file(generator, job.song, job.output, rep, args.griffin_lim_iters,
                                             args.overlap, args.batch_size, progress=True, bf16=args.bf16,
                                             provenance=provenance)
            for warning in caught:
                print(f"warning: {warning.message}", file=sys.stderr)
        except (AudioError, FileExistsError) as error:
            print(f"error: {error}", file=sys.stderr)
            failed += 1
            continue
        elapsed = time.perf_counter() - start
        note = f", scaled by {gain:.2f} ({20 * np.log10(gain):.1f} dB) to avoid clipping" if gain < 1.0 else ""
        print(f"{job.song} -> {job.output}: {seconds:.1f} s at {rep.sample_rate} Hz in {elapsed:.1f} s "
              f"({seconds / elapsed:.1f}x real time){note}")
        if args.plot:
            plot_conversion(job, rep, args.direction)
    return 1 if failed else 0


def plot_conversion(job: Job, rep: Representation, direction: str) -> None:
    """<output>.png: the spectrograms of the song and of its conversion, their first PLOT_SECONDS, one above the
    other; its name printed."""
    samples = PLOT_SECONDS * rep.sample_rate
    before, after = (load_audio(path, rep.sample_rate)[:samples] for path in (job.song, job.output))
    picture = job.output.with_suffix(".png")
    save_spectrograms({f"{job.song.name} (input)": audio_to_image(before, rep),
                       f"{job.output.name} ({direction}, as written)": audio_to_image(after, rep)}, rep, picture)
    print(f"spectrograms before and after: {picture}")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: 0 when every song was converted, 1 when one could not be (the others still are,
    unless the disk is full or read-only), 130 / 143 when interrupted (Ctrl-C / SIGTERM)."""
    return run_command(convert, parse_args(argv), (FileNotFoundError, ValueError),
                       interrupted="the songs converted before it are complete")


if __name__ == "__main__":
    sys.exit(main())
