"""Turn songs into jazz (or jazz into pop) with a trained CycleGAN generator.

    uv run convert.py                               # the bundled example -> samples/example_jazz.wav and .png
    uv run convert.py song.wav                      # -> song_jazz.wav beside it, with checkpoints/pop2jazz/latest.pt
    uv run convert.py song.m4a -o out/jazzy.flac --griffin-lim-iters 64   # .m4a, .webm, .wma: through ffmpeg
    uv run convert.py music/ --output-dir jazzed/ --format flac   # every song below music/, sub-folders mirrored
    uv run convert.py jazz.wav --direction jazz2pop --name demo   # the run trained with train.py --name demo
    uv run convert.py song.mp3 --mono                # mono at the model's 22050 Hz
    uv run convert.py loud_song.wav --level-match --strength 0.6   # a loud modern master: almost no holes (README)

Any length, any format libsndfile reads (wav, flac, ogg, opus, mp3, aiff, ...) and, when ffmpeg is installed, what
ffmpeg reads (.m4a AAC or ALAC, .webm Opus, .wma, ...). The model hears the song mono at the sample rate it was
trained with (22050 Hz: 0-11 kHz): the song's spectrogram is cut into overlapping 512-frame windows, each goes
through the generator, and the windows are cross-faded back together; the audio is rebuilt by Griffin-Lim starting
from the song's own phase. The output is at the song's own sample rate (at least 22050 Hz) and channel count:
the converted mid (L+R)/2, resampled back, plus the song's own high band above the model's (--no-keep-high-band
leaves it out) and its side signal (L-R)/2, both at the level the conversion gave the mid (full_quality.py);
--mono writes the model's mono 22050 Hz instead, and a song that is mono at 22050 Hz gets exactly that either
way. It is exactly as long as the input, peak-normalised below full scale when it would clip, in the format of
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
import sys
from pathlib import Path

import torch

from pop2jazz.audio_files import AudioError
from pop2jazz.checkpoint import DIRECTIONS
from pop2jazz.commands import float_range, fraction, non_negative_int, positive_int, run_command
from pop2jazz.compute import bf16_note, keep_freed_memory, pick_device
from pop2jazz.dataset import EXAMPLE_SONG
from pop2jazz.jobs import (
    BATCH_SIZE,
    GRIFFIN_LIM_ITERS,
    OVERLAP,
    ConversionOptions,
    load_model,
    plan,
    plot_conversion,
    run_job,
)
from pop2jazz.output_files import provenance_of, writable_extensions
from pop2jazz.runs import SAMPLES, add_checkpoint_options, find_checkpoint


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
    add("--griffin-lim-iters", type=non_negative_int, default=GRIFFIN_LIM_ITERS,
        help="Griffin-Lim iterations from the source "
        f"phase; 0 keeps the source phase as it is (default: {GRIFFIN_LIM_ITERS})")
    add("--overlap", type=fraction, default=OVERLAP, help="fraction of a window shared with the next one, cross-faded "
        f"(default: {OVERLAP})")
    add("--batch-size", type=positive_int, default=BATCH_SIZE,
        help=f"windows per generator call (default: {BATCH_SIZE})")
    add("--device", default="auto", help="auto (CUDA when available), cpu or cuda (default: auto)")
    add("--bf16", action="store_true", help="bf16 autocast on the CPU as on CUDA: about 2x faster where the CPU "
        "has AVX512-BF16 or AMX, output spectrograms move by about 0.5 dB; far slower on CPUs without them (AVX2 "
        "alone), which it says")
    add("--level-match", action=argparse.BooleanOptionalAction, default=None, help="bring every window to the "
        "level the model was trained at before the generator, and back after (default: as the model was trained; "
        "needs a model that records its reference level)")
    add("--strength", type=float_range(0.0, 1.0), default=1.0, help="how far to convert, 0-1: each spectrogram bin "
        "moves this share of the way, in dB, from the song to its conversion; 0 gives the song back, 0.5 half way "
        "(default: 1, the full conversion)")
    add("--compile", action="store_true", help="torch.compile the generator: about 20 %% faster after a start of "
        "half a minute; worth it for long songs or many")
    add("--mono", action="store_true", help="write mono at the model's sample rate (22050 Hz): the channels "
        "averaged, nothing above 11 kHz (default: the song's own sample rate and channels)")
    add("--keep-high-band", action=argparse.BooleanOptionalAction, default=True, help="keep the song's own sound "
        "above the model's band (10-22 kHz at 44.1 kHz), at the converted band's level; --no-keep-high-band "
        "leaves it out, as the model's 22050 Hz would (default: kept)")
    add("--overwrite", action="store_true", help="replace existing output files")
    add("--plot", action="store_true", help="also write <output>.png: the spectrograms of the song and of its "
        "conversion (their first 30 s), one above the other (always on for the bundled example)")
    add("-v", "--verbose", action="store_true", help="name the files of a converted folder that are skipped as not "
        "audio (by default only counted)")
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
    return args


def convert(args: argparse.Namespace) -> int:
    """Convert the songs of the command line; 0 when every one was converted, else 1 (see main)."""
    device = pick_device(args.device)
    note = bf16_note(None, args.bf16, device)  # convert.py has --bf16 only
    if note:
        print(note, file=sys.stderr)
    keep_freed_memory()
    loaded = load_model(find_checkpoint(args.name, args.checkpoint), args.direction, device, args.level_match)
    rep = loaded.rep
    print(f"using {loaded.description}")
    options = ConversionOptions.from_args(args)
    jobs, errors = plan(options, rep)
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    # dynamic: a song's last batch is smaller
    generator = torch.compile(loaded.generator, dynamic=True) if args.compile and jobs else loaded.generator
    provenance = {"tool": "convert.py", "direction": args.direction, "checkpoint": str(loaded.checkpoint)}
    failed = list(errors)
    for job in jobs:
        try:
            converted = run_job(generator, job, rep, options, provenance)
        except (AudioError, FileExistsError) as error:
            print(f"error: {error}", file=sys.stderr)
            failed.append(str(error))
            continue
        for warning in converted.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        print(converted.summary(job))
        if args.plot:
            print(f"spectrograms before and after: {plot_conversion(job, rep, args.direction)}")
    if failed and len(jobs) + len(errors) > 1:  # the errors of a folder, again after its progress bars
        print(f"\n{len(jobs) + len(errors) - len(failed)} of {len(jobs) + len(errors)} songs converted; "
              f"{len(failed)} could not be:", file=sys.stderr)
        for error in failed:
            print(f"  {error}", file=sys.stderr)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: 0 when every song was converted, 1 when one could not be (the others still are,
    unless the disk is full or read-only), 130 / 143 when interrupted (Ctrl-C / SIGTERM)."""
    return run_command(convert, parse_args(argv),
                       interrupted="the songs converted before it are complete")


if __name__ == "__main__":
    sys.exit(main())
