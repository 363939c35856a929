"""Files and where they go: every audio format, odd file names, checkpoints of another kind, linked folders, songs
sharing a stem, full and read-only disks, SIGTERM and SIGHUP. Full and read-only disks are simulated by making the
writes (output_files.open) or the creation of files (output_files.tempfile.mkstemp) raise OSError(ENOSPC / EROFS),
as a 2 MB tmpfs or a read-only mount would; SIGTERM and SIGHUP are sent to a real convert.py process."""

from __future__ import annotations

import builtins
import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import audio_preprocessing
import convert
import evaluate
import simple_gan
import train
from conftest import ROOT, write_wav
from pop2jazz import jobs as conversion_jobs
from pop2jazz import output_files as outputs
from pop2jazz import preprocessing
from pop2jazz.checkpoint import load_checkpoint

FIXTURES = ROOT / "tests" / "fixtures"
RNG = np.random.default_rng(2)
TINY = ["--width", "4", "--n-blocks", "1", "--pool-size", "2", "--griffin-lim-iters", "2"]


def noise(seconds: float, sample_rate: int = 22050) -> np.ndarray:
    return (0.1 * RNG.standard_normal(round(seconds * sample_rate))).astype(np.float32)


def preprocess(pop: Path, jazz: Path, output: Path, *extra: str) -> int:
    return audio_preprocessing.main(["--pop", str(pop), "--jazz", str(jazz), "--output", str(output), "--workers",
                                     "1", "--val-fraction", "0", *extra])


def songs_listed(folder: Path) -> list[str]:
    return sorted(Path(song).name for song in json.loads((folder / "representation.json").read_text())["songs"])


def digests(folder: Path) -> dict[str, str]:
    """Every file below `folder` (hidden ones too) -> its sha256: compares a folder before and after."""
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture()
def checkpoint(tiny_run) -> Path:
    return tiny_run["checkpoints"] / "latest.pt"


@pytest.fixture(scope="module")
def jazz(tmp_path_factory) -> Path:
    """Two 7 s jazz stand-ins (one 5.94 s chunk each)."""
    folder = tmp_path_factory.mktemp("jazz")
    for index in range(2):
        write_wav(folder / f"jazz{index}.wav", noise(7.0), 22050)
    return folder


# 1. audio the scanner did not list
def test_every_format_libsndfile_reads_is_used_and_other_files_are_counted(tmp_path, jazz, capsys):
    pop = tmp_path / "pop"
    audio = noise(7.0)
    for name, form in (("a.wav", "WAV"), ("b.wav", "WAV"), ("c.caf", "CAF"), ("d.w64", "W64"), ("e.rf64", "RF64")):
        pop.mkdir(exist_ok=True)
        sf.write(str(pop / name), audio, 22050, format=form, subtype="PCM_16")
    (pop / "f.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00")  # a cover; an .m4a is a song (test_decoding)
    assert preprocess(pop, jazz, tmp_path / "out") == 0
    output = capsys.readouterr().out
    assert songs_listed(tmp_path / "out" / "pop_train") == ["a.wav", "b.wav", "c.caf", "d.w64", "e.rf64"]
    assert f"note: 1 other file(s) in {pop} are not audio libsndfile or ffmpeg reads, skipped (-v names them)" \
        in output
    assert "f.jpg" not in output
    row = next(line.split() for line in output.splitlines() if line.startswith("pop "))
    assert row[1:6] == ["5", "0", "0", "0", "1"]  # read, skipped, short, ours, other
    assert preprocess(pop, jazz, tmp_path / "out", "-v") == 0
    assert f"skipped: {pop / 'f.jpg'}" in capsys.readouterr().out


# 2. file names that are not valid UTF-8, and other odd names
ODD_NAMES = [b"caf\xe9.wav", 'my song #1 "live".wav'.encode(), "it's.wav".encode(), "песня.wav".encode()]


@pytest.mark.slow
def test_odd_file_names_are_read_converted_and_printed(tmp_path, jazz, checkpoint, capsys):
    pop = tmp_path / "pop"
    pop.mkdir()
    for name in ODD_NAMES:
        sf.write(os.path.join(os.fsencode(pop), name), noise(7.0), 22050)
    assert preprocess(pop, jazz, tmp_path / "out") == 0
    assert songs_listed(tmp_path / "out" / "pop_train") == sorted(os.fsdecode(name) for name in ODD_NAMES)
    assert len(list((tmp_path / "out" / "pop_train").glob("*.npy"))) == 4
    cafe = pop / os.fsdecode(b"caf\xe9.wav")
    assert convert.main([str(cafe), "-o", str(tmp_path / "out.wav"), "--checkpoint", str(checkpoint),
                         "--griffin-lim-iters", "2"]) == 0
    assert sf.info(str(tmp_path / "out.wav")).frames == 7 * 22050
    assert "caf\\xe9.wav -> " in capsys.readouterr().out  # the odd byte, escaped, in the message

    # a console that takes ASCII only, as under LC_ALL=C with PYTHONIOENCODING=ascii: no UnicodeEncodeError
    environment = {**os.environ, "PYTHONIOENCODING": "ascii", "LC_ALL": "C", "OMP_NUM_THREADS": "1"}
    for name in (b"caf\xe9.wav", "песня.wav".encode()):
        run = subprocess.run([sys.executable, str(ROOT / "convert.py"), os.path.join(os.fsencode(pop), name),
                              "--checkpoint", str(checkpoint), "--griffin-lim-iters", "2"], capture_output=True,
                             env=environment, timeout=300)
        assert run.returncode == 0, run.stderr.decode("ascii", "replace")[-2000:]
        assert b"Traceback" not in run.stderr
        stem = os.path.splitext(name)[0]
        assert os.path.isfile(os.path.join(os.fsencode(pop), stem + b"_jazz.wav"))
        shown = b"caf\\xe9" if name.startswith(b"caf") else b"\\u043f\\u0435\\u0441\\u043d\\u044f"
        assert shown + b".wav -> " in run.stdout


# 3. a checkpoint of another kind
def test_checkpoints_of_another_kind_or_incomplete_are_named(tmp_path, dataset, checkpoint, capsys):
    song = write_wav(tmp_path / "song.wav", noise(3.0), 22050)
    simple, cyclegan = FIXTURES / "simple_gan_format1.pt", FIXTURES / "cyclegan_format1.pt"
    assert load_checkpoint(cyclegan, kind="cyclegan")["epoch"] == 1  # from before kinds were saved: inferred
    assert load_checkpoint(simple, kind="simple_gan")["epoch"] >= 1
    for command in (convert.main, evaluate.main):
        arguments = [str(song)] if command is convert.main else ["--data", str(dataset)]
        assert command([*arguments, "--checkpoint", str(simple)]) == 1
        error = capsys.readouterr().err
        assert f"{simple} is a simple_gan.py checkpoint, not a CycleGAN one (train.py)" in error
        assert "Traceback" not in error and "KeyError" not in error
    assert simple_gan.main(["--data", str(dataset / "jazz_train"), "--checkpoint", str(cyclegan), "--resume"]) == 1
    assert f"{cyclegan} is a CycleGAN checkpoint, not a simple_gan.py one (simple_gan.py)" in capsys.readouterr().err

    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"weight": torch.zeros(3)}}, foreign)
    state = load_checkpoint(checkpoint)
    broken = {"no_hop.pt": {**state, "representation": {k: v for k, v in state["representation"].items()
                                                         if k != "hop_length"}},
              "no_width.pt": {**state, "model": {k: v for k, v in state["model"].items() if k != "width"}},
              "no_generator.pt": {k: v for k, v in state.items() if k != "generator_ba"}}
    for name, value in broken.items():
        torch.save(value, tmp_path / name)
    expected = {"foreign.pt": "not a checkpoint of this project (format 1): a torch file from elsewhere",
                "no_hop.pt": "incomplete checkpoint: its representation is not usable",
                "no_width.pt": "incomplete checkpoint: no model width",
                "no_generator.pt": "incomplete checkpoint: no generator_ba"}
    for name, message in expected.items():
        assert convert.main([str(song), "--checkpoint", str(tmp_path / name)]) == 1
        error = capsys.readouterr().err
        assert f"{tmp_path / name}: {message}" in error and "Traceback" not in error
    assert not (tmp_path / "song_jazz.wav").exists()


# 4. symlinked sub-folders
def test_linked_folders_are_followed_each_file_once_and_a_loop_is_survived(tmp_path, jazz, capsys):
    pop, elsewhere = tmp_path / "data" / "pop", tmp_path / "elsewhere"
    for folder, names in ((pop, ("a.wav", "b.wav")), (elsewhere, ("c.wav", "d.wav"))):
        for name in names:
            write_wav(folder / name, noise(7.0), 22050)
    (pop / "linked").symlink_to("../../elsewhere")
    (pop / "loop").symlink_to(".")  # a link to its own parent
    (pop / "again.wav").symlink_to("a.wav")  # a second name of a file: counted once
    assert preprocess(pop, jazz, tmp_path / "out") == 0
    output = capsys.readouterr().out
    assert songs_listed(tmp_path / "out" / "pop_train") == ["a.wav", "b.wav", "c.wav", "d.wav"]
    assert f"warning: {pop / 'loop'} leads to a folder searched already (a link loop" in output
    assert len(list((tmp_path / "out" / "pop_train").glob("*.npy"))) == 4


# 5. two songs with one stem
def test_songs_sharing_a_stem_get_chunks_of_their_own(tmp_path, jazz):
    pop = tmp_path / "pop"
    for name in ("song.wav", "song.flac", "live/a.wav", "live__a.wav"):
        write_wav(pop / name, noise(7.0), 22050)
    assert preprocess(pop, jazz, tmp_path / "out") == 0
    assert songs_listed(tmp_path / "out" / "pop_train") == ["a.wav", "live__a.wav", "song.flac", "song.wav"]
    chunks = sorted(path.name for path in (tmp_path / "out" / "pop_train").glob("*.npy"))
    assert len(chunks) == 4 and len({name.rsplit("_", 1)[0] for name in chunks}) == 4
    assert [name.split("-")[0] for name in chunks] == ["live__a.wav", "live__a.wav", "song.flac", "song.wav"]


# 6. disk full
class FullDisk:
    """A file on a disk with `room` bytes left: writes beyond it raise OSError(ENOSPC), as on a full tmpfs."""

    room = 0

    def __init__(self, file):
        self.file = file

    def write(self, data) -> int:
        if len(data) > FullDisk.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        FullDisk.room -= len(data)
        return self.file.write(data)

    def __getattr__(self, name):
        return getattr(self.file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        self.file.close()


def fill_disk(monkeypatch, room: int) -> None:
    FullDisk.room = room
    monkeypatch.setattr(outputs, "open", lambda *args, **kwargs: FullDisk(builtins.open(*args, **kwargs)),
                        raising=False)


@pytest.mark.parametrize("tool", ["convert", "train", "preprocess"])
def test_a_full_disk_is_one_clear_line_and_loses_nothing(tool, tmp_path, small_chunks, checkpoint, jazz, monkeypatch,
                                                          capsys):
    folder = tmp_path / "out"
    if tool == "convert":
        for name in ("first", "second"):
            write_wav(folder / f"{name}.wav", noise(3.0), 22050)
        command = [str(folder / "second.wav"), "--checkpoint", str(checkpoint), "--griffin-lim-iters", "2"]
        assert convert.main([str(folder / "first.wav"), *command[1:]]) == 0
        run, target, size = lambda: convert.main(command), folder / "second_jazz.wav", "0.4 MB"
    elif tool == "train":
        command = ["--data", str(small_chunks), "--checkpoint-dir", str(folder), "--samples-dir",
                   str(tmp_path / "samples"), "--epochs", "2", "--steps-per-epoch", "1", *TINY]
        assert train.main([*command, "--stop-after", "1"]) == 0
        run, target, size = lambda: train.main([*command, "--resume"]), folder / "latest.pt", "1.4 MB"
    else:
        pop = tmp_path / "pop"
        write_wav(pop / "song.wav", noise(7.0), 22050)
        assert preprocess(pop, jazz, folder) == 0
        write_wav(pop / "other.wav", noise(7.0), 22050)
        run, target, size = lambda: preprocess(pop, jazz, folder), folder / ".pop_staging", None
    capsys.readouterr()
    before = digests(folder)

    fill_disk(monkeypatch, 1000)
    assert run() == 1
    stderr = capsys.readouterr().err
    errors = [line for line in stderr.splitlines() if line.startswith("error")]  # beside the progress bars
    assert len(errors) == 1 and "Traceback" not in stderr
    assert errors[0].startswith(f"error: no space left on {outputs.mount_point(folder)} writing {target}")
    assert (f"(needs about {size}): free some space there or write elsewhere" if size else
            ": free some space there or write elsewhere") in errors[0]
    assert digests(folder) == before  # nothing half-written, the earlier outputs byte-identical

    monkeypatch.undo()
    monkeypatch.setattr(outputs.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9, 1000))
    assert run() == 1  # known sizes are checked before the work starts
    error = capsys.readouterr().err
    assert f"no space left on {outputs.mount_point(folder)} for " in error and "needs about" in error
    assert "0.0 MB free" in error and digests(folder) == before


# 7. read-only output place
def read_only(monkeypatch, folder: Path) -> None:
    """Files cannot be created below `folder`, as on a read-only mount."""
    create = outputs.tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if Path(dir).resolve().is_relative_to(folder.resolve()):
            raise OSError(errno.EROFS, "Read-only file system")
        return create(*args, dir=dir, **kwargs)

    monkeypatch.setattr(outputs.tempfile, "mkstemp", mkstemp)


@pytest.mark.parametrize("tool", ["train", "simple_gan", "convert", "evaluate", "preprocess"])
def test_a_read_only_output_place_is_refused_before_any_work(tool, tmp_path, tiny_run, small_chunks, jazz,
                                                              monkeypatch, capsys):
    mounted = tmp_path / "ro"
    mounted.mkdir()
    read_only(monkeypatch, mounted)
    work = []
    for module, name in ((train, "cyclegan_step"), (simple_gan, "gan_step"), (conversion_jobs, "convert_file"),
                         (evaluate, "cached_judge"), (preprocessing, "write_song_chunks")):
        monkeypatch.setattr(module, name, lambda *args, **kwargs: work.append(name))
    song = write_wav(tmp_path / "song.wav", noise(7.0), 22050)
    checkpoint = str(tiny_run["checkpoints"] / "latest.pt")
    commands = {
        "train": (train.main, ["--data", str(small_chunks), "--checkpoint-dir", str(mounted), *TINY],
                  "--checkpoint-dir"),
        "simple_gan": (simple_gan.main, ["--data", str(small_chunks / "jazz_train"), "--checkpoint",
                                         str(mounted / "gan.pt")], "--checkpoint"),
        "convert": (convert.main, [str(song), "-o", str(mounted / "song.wav"), "--checkpoint", checkpoint], "-o"),
        "evaluate": (evaluate.main, ["--checkpoint", checkpoint, "--data", str(tiny_run["data"]), "-o",
                                     str(mounted)], "-o"),
        "preprocess": (audio_preprocessing.main, ["--pop", str(song.parent), "--jazz", str(jazz), "--output",
                                                  str(mounted)], "--output")}
    command, arguments, flag = commands[tool]
    assert command(arguments) == 1
    error = capsys.readouterr().err
    assert f" is read-only: cannot write {mounted}" in error and f"pass {flag}" in error and "Traceback" not in error
    assert work == [] and list(mounted.iterdir()) == []


# 8. interrupted conversion
@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_terminated_conversion_cleans_up_as_ctrl_c_does(signum, tmp_path, checkpoint):
    write_wav(tmp_path / "earlier.wav", noise(2.0), 22050)
    assert convert.main([str(tmp_path / "earlier.wav"), "--checkpoint", str(checkpoint), "--griffin-lim-iters",
                         "2"]) == 0
    earlier = (tmp_path / "earlier_jazz.wav").read_bytes()
    song = write_wav(tmp_path / "song.wav", noise(240.0), 22050)
    process = subprocess.Popen([sys.executable, str(ROOT / "convert.py"), str(song), "--checkpoint",
                                str(checkpoint), "--griffin-lim-iters", "64"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 120
    while not list(tmp_path.glob(".song_jazz.wav.*")) and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert list(tmp_path.glob(".song_jazz.wav.*")), "the conversion never started writing"
    time.sleep(0.5)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signum
    assert f"interrupted ({signal.Signals(signum).name}): no file was left half-written" in stderr.decode()
    assert "Traceback" not in stderr.decode()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["earlier.wav", "earlier_jazz.wav", "song.wav"]
    assert (tmp_path / "earlier_jazz.wav").read_bytes() == earlier
