"""Two runs writing one output at once (issue 23, cases 4 and 5): without --overwrite never two successes for one
file, the second run says what happened, and an earlier dataset is never lost or mixed."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import audio_preprocessing
from conftest import ROOT, TINY_RUN_FIXTURE, sine, write_wav
from pop2jazz.checkpoint import save_checkpoint
from pop2jazz.errors import WouldOverwriteError
from pop2jazz.output_files import atomic_write_bytes, output_lock, provenance_of, write_audio

MEANWHILE = "was written by another run meanwhile; pass --overwrite to replace it"
BUSY = "is being written by another audio_preprocessing.py"


def digests(folder: Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def noise(seconds: float, seed: int) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(round(seconds * 22050))).astype(np.float32)


# 4. the final rename never replaces a file that appeared since the check

@pytest.mark.parametrize("writer", ["bytes", "audio", "checkpoint"])
def test_a_file_that_appears_meanwhile_is_kept(tmp_path, writer, monkeypatch):
    target = tmp_path / "out.wav"
    import pop2jazz.output_files as output_files
    real_fsync = output_files.os.fsync

    def other_run_writes_first(descriptor):  # just before the rename: another process's file appears
        real_fsync(descriptor)
        if not target.exists():
            target.write_bytes(b"the other run's")

    monkeypatch.setattr(output_files.os, "fsync", other_run_writes_first)
    with pytest.raises(WouldOverwriteError, match=f"{target} {MEANWHILE}"):
        if writer == "bytes":
            atomic_write_bytes(target, b"ours", replace=False)
        elif writer == "audio":
            write_audio(target, sine(0.5), 22050, {"tool": "test"}, replace=False)
        else:
            save_checkpoint(target, {"kind": "cyclegan"}, replace=False)
    assert target.read_bytes() == b"the other run's"
    assert [path.name for path in tmp_path.iterdir()] == ["out.wav"]  # no temporary file left


def test_replace_mode_still_replaces(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"


@pytest.mark.slow
def test_two_conversions_into_one_output_never_both_succeed(tmp_path):
    songs = [write_wav(tmp_path / f"{name}.wav", sine(8.0, frequency=frequency), 22050)
             for name, frequency in (("a", 440.0), ("b", 660.0))]
    output = tmp_path / "same.wav"
    processes = [subprocess.Popen([sys.executable, str(ROOT / "convert.py"), str(song), "-o", str(output),
                                   "--checkpoint", str(TINY_RUN_FIXTURE), "--griffin-lim-iters", "2"],
                                  cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for song in songs]
    results = [(process.wait(timeout=300), process.stderr.read()) for process in processes]
    for process in processes:
        process.stdout.close()
        process.stderr.close()
    codes = [code for code, _ in results]
    assert sorted(codes) == [0, 1], results
    winner, (_, loser_err) = codes.index(0), results[codes.index(1)]
    assert f"{output} {MEANWHILE}" in loser_err or f"{output} exists: pass --overwrite" in loser_err
    assert "Traceback" not in loser_err
    assert provenance_of(output)["input"] == str(songs[winner])  # the file is whole and the winner's
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.wav", "b.wav", "same.wav"]


# 5. two preprocessing runs into one --output

def song_folders(root: Path, label: str, seed: int) -> tuple[Path, Path]:
    for domain in ("pop", "jazz"):
        for index in range(2):
            write_wav(root / label / domain / f"{label}_{domain}{index}.wav", noise(3.2, seed + index), 22050)
    return root / label / "pop", root / label / "jazz"


def preprocess_args(pop: Path, jazz: Path, output: Path) -> list[str]:
    return ["--pop", str(pop), "--jazz", str(jazz), "--output", str(output), "--chunk-seconds", "1.5",
            "--val-fraction", "0", "--workers", "1"]


def listed(folder: Path) -> list[str]:
    return sorted(Path(song).name for song in json.loads((folder / "representation.json").read_text())["songs"])


def test_a_second_preprocessing_into_a_locked_output_stops_and_keeps_the_dataset(tmp_path, capsys):
    output = tmp_path / "data"
    assert audio_preprocessing.main(preprocess_args(*song_folders(tmp_path, "first", 0), output)) == 0
    before = digests(output)
    capsys.readouterr()
    with output_lock(output, "audio_preprocessing.py"):  # as a run under way holds it
        code = audio_preprocessing.main(preprocess_args(*song_folders(tmp_path, "second", 10), output))
    err = capsys.readouterr().err
    assert code == 1
    assert f"error: {output} {BUSY}: wait for it to finish, or pass another --output" in err
    assert "Traceback" not in err
    assert digests(output) == before


def test_a_dataset_being_replaced_never_looks_foreign_to_another_run(tmp_path, monkeypatch):
    # a second run checks the output before it asks for the lock, so it may look while the first deletes the old
    # dataset: what it sees at pop_train then must be a whole dataset or nothing, never a folder without listing
    import pop2jazz.preprocessing as preprocessing
    output = tmp_path / "data"
    assert audio_preprocessing.main(preprocess_args(*song_folders(tmp_path, "first", 0), output)) == 0
    real_rmtree, seen = preprocessing.shutil.rmtree, []

    def rmtree_while_another_run_looks(path, *args, **kwargs):
        for listing in Path(path).rglob("representation.json"):  # as rmtree may take the listing first
            listing.unlink()
        try:
            preprocessing._check_replaceable(output, ("pop", "jazz"))
            seen.append("ours or nothing")
        except WouldOverwriteError as error:
            seen.append(str(error))
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(preprocessing.shutil, "rmtree", rmtree_while_another_run_looks)
    assert audio_preprocessing.main(preprocess_args(*song_folders(tmp_path, "second", 10), output)) == 0
    assert seen and set(seen) == {"ours or nothing"}, seen
    assert {song.split("_")[0] for domain in ("pop", "jazz") for song in listed(output / f"{domain}_train")} \
        == {"second"}
    assert sorted(path.name for path in output.iterdir()) == [".pop2jazz.lock", "jazz_train", "jazz_val",
                                                               "pop_train", "pop_val"]


@pytest.mark.slow
def test_two_preprocessing_processes_into_one_output(tmp_path):
    output = tmp_path / "data"
    first, second = song_folders(tmp_path, "first", 0), song_folders(tmp_path, "second", 10)
    assert audio_preprocessing.main(preprocess_args(*song_folders(tmp_path, "earlier", 20), output)) == 0
    processes = [subprocess.Popen([sys.executable, str(ROOT / "audio_preprocessing.py"),
                                   *preprocess_args(*folders, output)], cwd=tmp_path, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True) for folders in (first, second)]
    results = [(process.wait(timeout=300), process.stderr.read()) for process in processes]
    for process in processes:
        process.stderr.close()
    for code, err in results:
        assert code == 0 or (code == 1 and BUSY in err and "Traceback" not in err), results
    assert 0 in [code for code, _ in results]
    # the dataset is one run's, whole: its listing and its chunks agree, in every folder, for both domains
    labels = set()
    for domain in ("pop", "jazz"):
        folder = output / f"{domain}_train"
        songs = listed(folder)
        labels |= {song.split("_")[0] for song in songs}
        chunks = sorted(path.name for path in folder.glob("*.npy"))
        assert {chunk.rsplit("_", 1)[0] for chunk in chunks} == {Path(song).stem for song in songs}
    assert len(labels) == 1 and labels <= {"first", "second"}
    assert [path.name for path in output.iterdir() if "staging" in path.name] == []


def test_a_second_evaluation_into_a_report_being_written_stops(small_chunks, tmp_path, capsys):
    import evaluate
    songs = [write_wav(tmp_path / f"{name}.wav", noise(3.0, seed), 22050) for seed, name in enumerate("ab")]
    report = tmp_path / "report"
    report.mkdir()
    (report / "report.md").write_text("the earlier report\n")
    with output_lock(report, "evaluate.py"):  # as an evaluation under way holds it
        before = digests(report)
        code = evaluate.main([str(songs[0]), "--jazz-songs", str(songs[1]), "--data", str(small_chunks),
                              "--checkpoint", str(TINY_RUN_FIXTURE), "-o", str(report)])
    err = capsys.readouterr().err
    assert code == 1
    assert f"error: {report} is being written by another evaluate.py: wait for it to finish, or pass another -o" \
        in err
    assert digests(report) == before
