"""Never lose a user's work, never train on our own output: named runs, provenance, folder conversion,
output formats, progress over the whole run, the benchmark's smoke test."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import audio_preprocessing
import benchmark
import convert
import simple_gan
import train
from conftest import write_wav
from pop2jazz import jobs as conversion_jobs
from pop2jazz.checkpoint import load_checkpoint
from pop2jazz.dataset import CLIPS_VARIABLE, example_clips
from pop2jazz.output_files import provenance_of
from pop2jazz.runs import find_checkpoint

RNG = np.random.default_rng(1)
TINY = ["--width", "4", "--n-blocks", "1", "--pool-size", "2", "--griffin-lim-iters", "2"]


def noise(seconds: float, sample_rate: int = 22050) -> np.ndarray:
    return (0.1 * RNG.standard_normal(round(seconds * sample_rate))).astype(np.float32)


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> Path:
    """2 noise songs of 6 s per domain, one held out, in chunks of 1.5 s (4 per song)."""
    root = tmp_path_factory.mktemp("small")
    for domain in ("pop", "jazz"):
        for index in range(2):
            write_wav(root / domain / f"{domain}{index}.wav", noise(6.0), 22050)
    assert audio_preprocessing.main(["--pop", str(root / "pop"), "--jazz", str(root / "jazz"), "--output",
                                     str(root / "data"), "--chunk-seconds", "1.5", "--val-fraction", "0.5"]) == 0
    return root / "data"


def listing(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


# 1. a finished or running training is never replaced by accident
@pytest.mark.slow
def test_a_second_run_is_refused_names_sit_side_by_side_and_overwrite_clears(small_data, tmp_path, monkeypatch,
                                                                            capsys):
    monkeypatch.chdir(tmp_path)
    run = ["--data", str(small_data), "--steps-per-epoch", "2", *TINY]
    assert train.main([*run, "--epochs", "2"]) == 0  # the default name
    latest = tmp_path / "checkpoints" / "pop2jazz" / "latest.pt"
    saved = latest.read_bytes()
    assert listing(tmp_path / "samples" / "pop2jazz") == ["epoch_001.png", "epoch_001.wav", "epoch_002.png",
                                                         "epoch_002.wav", "index.html", "losses.csv", "losses.png"]
    capsys.readouterr()

    assert train.main([*run, "--epochs", "2"]) == 1
    error = capsys.readouterr().err
    assert "checkpoints/pop2jazz holds a run already (latest.pt): pass --resume to continue it, another --name" in error
    assert "--overwrite" in error and "Traceback" not in error
    assert latest.read_bytes() == saved

    assert train.main([*run, "--epochs", "1", "--name", "other"]) == 0
    assert load_checkpoint(tmp_path / "checkpoints" / "other" / "latest.pt")["epoch"] == 1
    assert latest.read_bytes() == saved and listing(tmp_path / "samples" / "other")[0] == "epoch_001.png"

    (tmp_path / "samples" / "pop2jazz" / "my notes.txt").write_text("mine")
    assert train.main([*run, "--epochs", "1", "--overwrite"]) == 0
    assert load_checkpoint(latest)["epoch"] == 1
    assert listing(tmp_path / "samples" / "pop2jazz") == ["epoch_001.png", "epoch_001.wav", "index.html",
                                                         "losses.csv", "losses.png", "my notes.txt"]  # epoch 2 gone
    with pytest.raises(SystemExit):  # argparse refuses the pair
        train.main([*run, "--resume", "--overwrite"])


def test_simple_gan_runs_are_named_and_never_replaced(small_data, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run = ["--data", str(small_data / "jazz_train"), "--image-size", "16", "--latent-dim", "4", "--hidden", "8",
           "--batch-size", "4", "--n-wavs", "1", "--griffin-lim-iters", "2", "--epochs", "1"]
    assert simple_gan.main(run) == 0
    latest = tmp_path / "checkpoints" / "simple_gan" / "latest.pt"
    saved = latest.read_bytes()
    assert load_checkpoint(latest, kind="simple_gan")["kind"] == "simple_gan"
    assert provenance_of(tmp_path / "samples" / "simple_gan" / "epoch_001_0.wav")["tool"] == "simple_gan.py"
    assert simple_gan.main(run) == 1
    assert "checkpoints/simple_gan holds a run already" in capsys.readouterr().err
    assert latest.read_bytes() == saved
    assert simple_gan.main([*run, "--name", "second"]) == 0
    assert (tmp_path / "checkpoints" / "second" / "latest.pt").is_file() and latest.read_bytes() == saved


def test_convert_and_evaluate_find_the_checkpoint_by_name(tiny_run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "checkpoints" / "mine").mkdir(parents=True)
    shutil.copy(tiny_run["checkpoints"] / "latest.pt", tmp_path / "checkpoints" / "mine" / "latest.pt")
    assert find_checkpoint("mine") == Path("checkpoints/mine/latest.pt")
    assert find_checkpoint("mine", tmp_path / "checkpoints" / "mine" / "latest.pt").is_file()
    song = write_wav(tmp_path / "song.wav", noise(3.0), 22050)
    assert convert.main([str(song), "--name", "mine", "--griffin-lim-iters", "2"]) == 0
    assert provenance_of(tmp_path / "song_jazz.wav")["checkpoint"] == "checkpoints/mine/latest.pt"
    capsys.readouterr()
    assert convert.main([str(song), "--name", "nothing", "--overwrite"]) == 1
    error = capsys.readouterr().err
    assert "no checkpoint at checkpoints/nothing/latest.pt" in error and "the runs there are mine" in error


# 2. the tool never feeds on its own output
def test_a_converted_song_is_not_preprocessed_nor_converted_again(tiny_run, gtzan_mini, tmp_path, capsys):
    data = tmp_path / "data"
    for domain in ("pop", "jazz"):
        (data / domain).mkdir(parents=True)
        for clip in sorted((gtzan_mini / domain).glob("*.wav"))[:2]:
            shutil.copy(clip, data / domain / clip.name)
    preprocess = ["--pop", str(data / "pop"), "--jazz", str(data / "jazz"), "--workers", "1"]
    assert audio_preprocessing.main([*preprocess, "--output", str(tmp_path / "before")]) == 0
    checkpoint = str(tiny_run["checkpoints"] / "latest.pt")
    assert convert.main([str(data / "pop" / "pop.00000.wav"), "--checkpoint", checkpoint,
                         "--griffin-lim-iters", "2"]) == 0
    converted = data / "pop" / "pop.00000_jazz.wav"
    made = provenance_of(converted)
    assert made["tool"] == "convert.py" and made["checkpoint"] == checkpoint  # the metadata names both
    assert made["input"] == str(data / "pop" / "pop.00000.wav") and made["direction"] == "pop2jazz"
    capsys.readouterr()

    assert audio_preprocessing.main([*preprocess, "--output", str(tmp_path / "after")]) == 0
    output = capsys.readouterr().out
    assert "1 pop file(s) were written by pop2jazz itself" in output and str(converted) in output
    for split in ("pop_train", "pop_val"):
        assert listing(tmp_path / "after" / split) == listing(tmp_path / "before" / split)

    assert convert.main([str(converted), "--checkpoint", checkpoint]) == 1
    error = capsys.readouterr().err
    assert f"{converted} was written by pop2jazz (convert.py, from {data / 'pop' / 'pop.00000.wav'})" in error
    assert "pass --allow-converted to do it anyway" in error
    assert convert.main([str(converted), "--checkpoint", checkpoint, "--allow-converted", "-o",
                         str(tmp_path / "twice.wav"), "--griffin-lim-iters", "0"]) == 0
    for converted_before in (1, 2):  # the whole folder, twice
        assert convert.main([str(data / "pop"), "--checkpoint", checkpoint, "--griffin-lim-iters", "2"]) == 0
        error = capsys.readouterr().err
        assert f"{converted_before} song(s) converted before" in error
        assert f"{converted_before} file(s) written by pop2jazz itself skipped" in error
    assert listing(data / "pop") == ["pop.00000.wav", "pop.00000_jazz.wav", "pop.00001.wav", "pop.00001_jazz.wav"]


# 3. folders, output names and formats
def test_folder_conversion_into_an_output_dir_keeps_every_output(tiny_run, tmp_path):
    songs = tmp_path / "songs"
    audio = noise(3.0)
    for name in ("song.wav", "song.flac", "song.mp3", "live/take.wav"):
        write_wav(songs / name, audio, 22050, "MPEG_LAYER_III" if name.endswith(".mp3") else "PCM_16")
    (songs / "cover.jpg").write_bytes(b"\xff\xd8 not audio")
    out = tmp_path / "out"
    assert convert.main([str(songs), "--output-dir", str(out), "--checkpoint", str(tiny_run["checkpoints"] /
                        "latest.pt"), "--griffin-lim-iters", "2"]) == 0
    assert listing(out) == ["live", "song.flac_jazz.wav", "song.mp3_jazz.wav", "song.wav_jazz.wav"]
    assert listing(out / "live") == ["take_jazz.wav"]
    inputs = {provenance_of(out / name)["input"] for name in listing(out)[1:]}
    assert inputs == {str(songs / name) for name in ("song.wav", "song.flac", "song.mp3")}  # none replaced
    written = {name: (out / name).read_bytes() for name in listing(out)[1:]}
    assert convert.main([str(songs), "--output-dir", str(out), "--checkpoint", str(tiny_run["checkpoints"] /
                        "latest.pt")]) == 0  # again: every song converted before, nothing replaced
    assert {name: (out / name).read_bytes() for name in listing(out)[1:]} == written


def test_a_folder_with_a_bad_song_ends_with_what_failed(tiny_run, tmp_path, capsys):
    songs = tmp_path / "songs"
    write_wav(songs / "good.wav", noise(3.0), 22050)
    (songs / "bad.wav").write_bytes(b"RIFF not really a wave file")
    (songs / "cover.jpg").write_bytes(b"\xff\xd8 not audio")
    assert convert.main([str(songs), "-v", "--checkpoint", str(tiny_run["checkpoints"] / "latest.pt"),
                         "--griffin-lim-iters", "2"]) == 1
    error = capsys.readouterr().err
    assert f"skipped: {songs / 'cover.jpg'}" in error  # -v names the file that is not audio
    summary = error[error.index("1 of 2 songs converted; 1 could not be:"):]
    assert f"  {songs / 'bad.wav'}: not a readable audio file" in summary  # again after the progress bars
    assert (songs / "good_jazz.wav").is_file() and not (songs / "bad_jazz.wav").exists()


def test_the_output_format_follows_the_extension(tiny_run, tmp_path, monkeypatch, capsys):
    song = write_wav(tmp_path / "song.wav", noise(3.0), 22050)
    checkpoint = ["--checkpoint", str(tiny_run["checkpoints"] / "latest.pt"), "--griffin-lim-iters", "2"]
    for name, form in (("out.flac", "FLAC"), ("out.ogg", "OGG"), ("out.wav", "WAV")):
        assert convert.main([str(song), "-o", str(tmp_path / name), *checkpoint]) == 0
        info = sf.info(str(tmp_path / name))
        assert info.format == form and info.samplerate == 22050 and abs(info.frames - 66150) < 2048
    assert convert.main([str(tmp_path), "--format", "flac", "--output-dir", str(tmp_path / "f"), *checkpoint]) == 0
    assert sf.info(str(tmp_path / "f" / "song_jazz.flac")).format == "FLAC"  # the outputs above are ours: skipped
    capsys.readouterr()

    def no_work(*args, **kwargs):
        raise AssertionError("converted although the output cannot be written")

    monkeypatch.setattr(conversion_jobs, "convert_file", no_work)
    for name in ("out.xyz", "out.w64"):  # w64 holds no metadata, so no provenance
        assert convert.main([str(song), "-o", str(tmp_path / name), *checkpoint]) == 1
        error = capsys.readouterr().err
        assert f"cannot write .{name[4:]} audio at 22050 Hz; use one of .aiff, .caf, .flac, .mp3, .ogg" in error
        assert not (tmp_path / name).exists()


# 4. long work says how long it takes
def test_training_shows_the_whole_run_and_estimates_a_slow_cpu_run(small_data, tmp_path, monkeypatch, capsys):
    note = train.slow_run_note(23.0, 200 * 1000, torch.device("cpu"))  # the paper-size model, 200 epochs
    assert "about 53.2 days" in note and "--width 16 --n-blocks 3" in note
    assert train.slow_run_note(23.0, 200 * 1000, torch.device("cuda")) is None
    assert train.slow_run_note(1.4, 500, torch.device("cpu")) is None  # the CPU demo: 12 minutes, no note

    monkeypatch.setattr(train, "SLOW_RUN_SECONDS", 0.0)  # any run is "slow", as the paper-size model on a CPU
    assert train.main(["--data", str(small_data), "--checkpoint-dir", str(tmp_path / "c"), "--samples-dir",
                       str(tmp_path / "s"), "--epochs", "2", "--steps-per-epoch", "3", *TINY]) == 0
    captured = capsys.readouterr()
    assert "6/6" in captured.err and "3/3" not in captured.err  # one bar over both epochs' steps
    assert "s per step on the CPU: the 6 steps of this run take about" in captured.out
    assert train.CPU_RECIPE in captured.out and "Carrying on." in captured.out


# 5. README truths: the benchmark's smoke test is no verdict; the clips can be one's own
def table_of(quick: bool) -> str:
    convert_figures = {"generator": {"width": 8, "n_blocks": 2}, "batch_size": 4, "bf16": False, "compile": False,
                       "audio_seconds": 69.0, "real_time_factor": 30.0, "windows": 16,
                       "forward_seconds_per_window": 0.01, "generator_bound_real_time_factor": 40.0,
                       "fraction_of_bound": 0.75}
    method = {"spectral_convergence_db": -20.0, "seconds": 0.1}
    results = {"convert": convert_figures,
               "memory": {"long_audio_seconds": 69.0, "short_audio_seconds": 20.0, "peak_rss_mb_long": 500.0,
                          "peak_rss_mb_short": 480.0, "peak_rss_ratio": 1.04, "peak_rss_growth_mb": 20.0,
                          "rss_after_imports_mb": 400.0},
               "inversion": {"audio_seconds": 5.0, "n_iter": 32, "librosa_griffinlim": method,
                             "source_phase_griffin_lim": method, "source_phase_librosa_stft": method,
                             "improvement_db": 20.0},
               "preprocessing": {"songs": 20, "audio_seconds": 360.0, "throughput_real_time": 1000.0},
               "training": [{"model": "tiny" if quick else "paper", "width": 8 if quick else 64, "n_blocks": 2,
                             "batch_size": 1, "iterations_per_second": 3.0}],
               "machine": {"cpus": 2, "device": "cpu", "load_average_before": [1.0], "load_average_after": [1.0]},
               "targets_met": None if quick else {"real_time_factor": True, "fraction_of_bound": False,
                                                  "peak_rss_ratio": True, "inversion": True,
                                                  "throughput_real_time": True}}
    return benchmark.table(results)


def test_the_quick_benchmark_labels_no_model_paper_size_and_gives_no_verdict():
    quick, full = table_of(quick=True), table_of(quick=False)
    assert quick.startswith("smoke test (--quick)") and "training smoke-test 8x2" in quick
    assert "paper" not in quick and ">= 8x" not in quick and "| yes" not in quick and "| no" not in quick
    assert "training paper-size 64x2" in full and ">= 8x" in full and "| yes" in full and "| no" in full


def test_the_clips_can_be_the_users_own(monkeypatch, tmp_path):
    monkeypatch.setenv(CLIPS_VARIABLE, str(tmp_path))
    assert example_clips() == tmp_path
    monkeypatch.delenv(CLIPS_VARIABLE)
    assert example_clips().parts[-3:] == ("shared", "audio", "gtzan_mini")
