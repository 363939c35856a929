"""Out of the box: the bundled model and example song, and the generator-only export they rest on."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

import evaluate
import train
from conftest import ROOT
from pop2jazz.checkpoint import BUNDLED_MODEL, generator_from, load_checkpoint
from pop2jazz.dataset import EXAMPLE_SONG, ChunkFolder
from pop2jazz.output_files import provenance_of
from pop2jazz.runs import GENERATORS_FILE, find_checkpoint

LEFT_OUT = shutil.ignore_patterns(".git", ".venv", "data", "checkpoints", "samples", "test-artefacts", "__pycache__",
                                  ".pytest_cache", "*.pyc")


@pytest.mark.slow
def test_a_fresh_copy_converts_the_bundled_example_with_no_arguments(tmp_path):
    """The README's first command, `uv run convert.py`, in a copy of the repository with no checkpoints/ or data/."""
    copy = tmp_path / "pop2jazz"
    shutil.copytree(ROOT, copy, ignore=LEFT_OUT)
    assert not (copy / "checkpoints").exists() and not (copy / "data").exists()
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "convert.py"], cwd=copy, env=environment, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "using the bundled model pretrained/pop2jazz.pt" in run.stdout
    output = copy / "samples" / "example_jazz.wav"
    audio, sample_rate = sf.read(str(output))
    assert sample_rate == 22050 and len(audio) == sf.info(str(EXAMPLE_SONG)).frames  # 29.65 s, as long as the song
    assert np.isfinite(audio).all() and np.sqrt(np.mean(audio ** 2)) > 0.01  # music, not silence
    assert provenance_of(output)["checkpoint"].endswith("pretrained/pop2jazz.pt")
    assert (copy / "samples" / "example_jazz.png").stat().st_size > 50_000
    assert "samples/example_jazz.png" in run.stdout
    again = subprocess.run([sys.executable, "convert.py", "--direction", "jazz2pop"], cwd=copy, env=environment,
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(sf.read(str(copy / "samples" / "example_pop.wav"))[0]) == len(audio)


def test_the_bundled_model_is_a_small_generator_only_export():
    state = load_checkpoint(BUNDLED_MODEL, kind="cyclegan")
    assert state["generators_only"] and BUNDLED_MODEL.stat().st_size < 5 * 2 ** 20  # a few MB at most
    assert not {"discriminator_a", "discriminator_b", "optimizer_g", "image_pool_a"} & set(state)
    assert all(value.dtype == torch.float16 for value in state["generator_ab"].values() if value.is_floating_point())


@pytest.mark.slow
def test_the_export_converts_as_the_full_checkpoint_does(tiny_run, dataset):
    """generators.pt (float16) against latest.pt (float32), on real held-out chunks: the same output to float16
    precision (weights rounded to 11 significant bits move a [-1, 1] output by a few thousandths)."""
    full = load_checkpoint(tiny_run["checkpoints"] / "latest.pt")
    export = load_checkpoint(tiny_run["checkpoints"] / GENERATORS_FILE, kind="cyclegan")
    assert export["epoch"] == full["epoch"] and export["model"] == full["model"]
    assert export["representation"] == full["representation"]
    size = (tiny_run["checkpoints"] / GENERATORS_FILE).stat().st_size
    assert size < (tiny_run["checkpoints"] / "latest.pt").stat().st_size / 20
    chunks = torch.from_numpy(np.stack([ChunkFolder(dataset / "pop_val")[index] for index in range(2)]))[:, None]
    for direction in ("pop2jazz", "jazz2pop"):
        with torch.no_grad():
            expected = generator_from(full, direction)(chunks)
            exported = generator_from(export, direction)(chunks)
        assert (exported - expected).abs().max() < 2e-2
        assert (exported - expected).abs().mean() < 2e-3


def test_resume_refuses_an_export(tiny_run, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(tiny_run["checkpoints"] / GENERATORS_FILE, run / "latest.pt")
    assert train.main(["--data", str(tiny_run["data"]), "--checkpoint-dir", str(run), "--samples-dir",
                       str(tmp_path / "s"), "--resume"]) == 1
    assert "generator-only export" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["pop2jazz", "other"])
def test_without_a_run_the_default_name_falls_back_to_the_bundled_model(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if name == "pop2jazz":
        assert find_checkpoint(name) == BUNDLED_MODEL
        (tmp_path / "checkpoints" / name).mkdir(parents=True)
        shutil.copy(BUNDLED_MODEL, tmp_path / "checkpoints" / name / "latest.pt")
        assert find_checkpoint(name).resolve() == tmp_path / "checkpoints" / name / "latest.pt"  # the run first
    else:
        with pytest.raises(FileNotFoundError, match="train one with `uv run train.py --name other`"):
            find_checkpoint(name)  # a run asked for by name is never silently replaced by the bundled model


@pytest.mark.slow
def test_the_model_cards_figures_are_what_evaluate_measures(held_out_dataset, tmp_path):
    """pretrained/evaluation.json holds evaluate.py's figures of the bundled model on the held-out songs, quoted in
    pretrained/README.md and the README's Results; evaluate.py measures them again here. Tolerances: one held-out
    chunk of the transfer rate, 0.02 of a probability or a chroma similarity, 0.5 dB."""
    card = json.loads((BUNDLED_MODEL.parent / "evaluation.json").read_text())
    assert evaluate.main(["--checkpoint", str(BUNDLED_MODEL), "--data", str(held_out_dataset), "-o",
                          str(tmp_path / "eval")]) == 0
    measured = json.loads((tmp_path / "eval" / "figures.json").read_text())
    for row in ("pop_baseline", "eq_baseline", "smear_control", "converted", "converted_audio", "jazz_ceiling"):
        now, then = measured["style_transfer"][row], card["style_transfer"][row]
        assert now["chunks"] == then["chunks"]
        assert now["jazz_rate"] == pytest.approx(then["jazz_rate"], abs=1.01 / now["chunks"])
        assert now["jazz_probability"] == pytest.approx(then["jazz_probability"], abs=0.02)
    for key in ("chroma_similarity", "chroma_similarity_audio", "chroma_similarity_floor",
                "chroma_similarity_eq_baseline"):
        assert measured["content"][key] == pytest.approx(card["content"][key], abs=0.02)
    assert measured["inversion"]["source_phase_griffin_lim"]["spectral_convergence_db"] == pytest.approx(
        card["inversion"]["source_phase_griffin_lim"]["spectral_convergence_db"], abs=0.5)
    assert measured["artefacts"]["checkerboard_db"] == pytest.approx(card["artefacts"]["checkerboard_db"], abs=0.5)
    assert [verdict["warning"] for verdict in measured["verdicts"]] == [verdict["warning"] for verdict
                                                                        in card["verdicts"]]
    assert [verdict["warning"] for verdict in measured["classifier_verdicts"]] == \
        [verdict["warning"] for verdict in card["classifier_verdicts"]]
    assert measured["tagger"]["level_dbfs"] == card["tagger"]["level_dbfs"] == -20.0
    for row, then in card["tagger"]["rows"].items():  # the pretrained tagger, the headline figures
        now = measured["tagger"]["rows"][row]
        assert now["patches"] == then["patches"]
        for key in ("jazz_probability", "pop_probability"):
            assert now[key] == pytest.approx(then[key], abs=0.02)
        assert now["jazz_over_pop"] == pytest.approx(then["jazz_over_pop"], abs=1.01 / now["patches"])
    for row, then in card["tagger"]["kid"].items():
        assert measured["tagger"]["kid"][row] == pytest.approx(then, rel=0.1)
    heard = measured["tagger"]["rows"]  # real held-out jazz clearly above the held-out pop
    assert heard["jazz_ceiling"]["jazz_probability"] > heard["pop_baseline"]["jazz_probability"] + 0.3
    assert heard["jazz_ceiling"]["jazz_over_pop"] > 0.9 > 0.3 > heard["pop_baseline"]["jazz_over_pop"]
