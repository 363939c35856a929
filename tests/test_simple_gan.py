"""The fully-connected GAN (simple_gan.py) on chunks of the shared real jazz clips."""

from __future__ import annotations

import csv
import math

import matplotlib.image
import numpy as np
import pytest
import soundfile as sf
import torch

import simple_gan
from model_cyclegan import init_weights
from pop2jazz import compute
from pop2jazz.checkpoint import load_checkpoint
from pop2jazz.dataset import ChunkFolder, read_listing
from pop2jazz.spectrogram import Representation

TINY = ["--image-size", "32", "--latent-dim", "16", "--hidden", "32", "--batch-size", "8", "--n-wavs", "2",
        "--griffin-lim-iters", "2", "--sample-every", "1"]


@pytest.fixture(scope="module")
def gan_run(dataset, tmp_path_factory) -> dict:
    """Two epochs of a tiny simple GAN on dataset/jazz_train, then a third by --resume: its folders."""
    root = tmp_path_factory.mktemp("simple_gan")
    run = ["--data", str(dataset / "jazz_train"), "--checkpoint", str(root / "gan.pt"), "--samples-dir",
           str(root / "samples")]
    first = simple_gan.main([*run, "--epochs", "2", *TINY])
    saved_after_two = load_checkpoint(root / "gan.pt")
    resumed = simple_gan.main([*run, "--resume", "--epochs", "3"])  # the tiny settings come from the checkpoint
    return {"codes": (first, resumed), "saved_after_two": saved_after_two, "checkpoint": root / "gan.pt",
            "samples": root / "samples", "data": dataset / "jazz_train"}


def test_each_epoch_writes_a_png_grid_and_wavs(gan_run):
    assert gan_run["codes"] == (0, 0)
    rep = read_listing(gan_run["data"])[0]
    for epoch in (1, 2, 3):
        grid = matplotlib.image.imread(gan_run["samples"] / f"epoch_{epoch:03d}.png")
        assert grid.shape[0] > 300 and grid.shape[1] > 300 and grid[..., :3].std() > 0.05  # an image, not blank
        for index in range(2):
            audio, sample_rate = sf.read(str(gan_run["samples"] / f"epoch_{epoch:03d}_{index}.wav"))
            assert sample_rate == rep.sample_rate
            assert len(audio) == (rep.chunk_frames - 1) * rep.hop_length  # one chunk's worth of audio
            assert np.isfinite(audio).all() and 0.01 < np.abs(audio).max() <= 0.99 + 1e-4
        assert not (gan_run["samples"] / f"epoch_{epoch:03d}_2.wav").exists()


def test_losses_are_finite_and_logged(gan_run):
    state = load_checkpoint(gan_run["checkpoint"])
    assert [row["epoch"] for row in state["history"]] == [1, 2, 3]
    with open(gan_run["samples"] / "losses.csv") as file:
        rows = list(csv.DictReader(file))
    assert [int(row["epoch"]) for row in rows] == [1, 2, 3]
    for row in state["history"]:
        assert all(math.isfinite(row[name]) for name in simple_gan.LOSSES)
        assert row["loss_d"] > 0 and row["loss_g"] > 0
        assert 0 < row["d_real"] < 1 and 0 < row["d_fake"] < 1
        assert float(rows[row["epoch"] - 1]["loss_d"]) == pytest.approx(row["loss_d"])


def test_checkpoint_records_the_representation_and_resume_continues_it(gan_run):
    state, before = load_checkpoint(gan_run["checkpoint"]), gan_run["saved_after_two"]
    assert Representation.from_dict(state["representation"]) == \
        read_listing(gan_run["data"])[0]
    assert state["model"] == {"image_size": 32, "latent_dim": 16, "hidden": 32, "norm": "batch"}
    assert state["epoch"] == 3 and before["epoch"] == 2
    assert state["history"][:2] == before["history"]
    assert torch.equal(state["fixed_noise"], before["fixed_noise"])
    assert not torch.equal(state["generator"]["model.0.weight"], before["generator"]["model.0.weight"])


def test_generator_output_has_the_configured_shape_in_range(gan_run):
    state = load_checkpoint(gan_run["checkpoint"])
    generator = simple_gan.MlpGenerator(**state["model"])
    generator.load_state_dict(state["generator"])
    images = generator(torch.randn(5, 16) * 3)  # large latents push the tanh towards its limits
    assert images.shape == (5, 1, 32, 32)
    assert images.min() >= -1 and images.max() <= 1 and images.std() > 0
    discriminator = simple_gan.MlpDiscriminator(32, 32)
    discriminator.load_state_dict(state["discriminator"])
    assert discriminator(images).shape == (5,)


def test_chunks_are_shrunk_by_averaging_blocks(dataset):
    folder = ChunkFolder(dataset / "jazz_train")
    images = simple_gan.shrink_chunks(folder, 64)
    assert images.shape == (len(folder), 1, 64, 64)
    chunk = torch.from_numpy(folder[0])
    assert images[0, 0, 3, 5] == pytest.approx(chunk[24:32, 40:48].mean().item(), abs=1e-5)  # 8x8 blocks of 512x512
    assert images.min() >= -1 and images.max() <= 1


def test_missing_data_folder_says_how_to_make_it(tmp_path, capsys):
    code = simple_gan.main(["--data", str(tmp_path / "nowhere"), "--checkpoint", str(tmp_path / "gan.pt")])
    assert code == 1
    assert "run `uv run audio_preprocessing.py`" in capsys.readouterr().err
    assert not (tmp_path / "gan.pt").exists()


def test_help_gives_every_default(capsys):
    with pytest.raises(SystemExit) as exit_info:
        simple_gan.parse_args(["--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for default in ("(default: data/jazz_train)", "(default: simple_gan)", "(default: 200;", "(default: 32)",
                    "(default: 64)", "(default: 100)", "(default: 256)", "(default: 2e-4)", "(default: 2)",
                    "(default: 0)"):
        assert default in text


@pytest.mark.slow
def test_a_short_default_run_learns_the_domains_spectral_shape(dataset, tmp_path):
    """90 epochs (270 steps, less than half the default run) at the default sizes: the samples' mean spectrum
    (over samples and time, per frequency row) moves from the untrained generator's flat grey to within 40 % of
    that distance of the real chunks' bass-heavy slope (0.17 against 0.66 when written), and the samples differ
    from each other about as much as real chunks do, where the old defaults drew near-identical noise squares."""
    folder = ChunkFolder(dataset / "jazz_train")
    assert simple_gan.main(["--data", str(folder.folder), "--checkpoint", str(tmp_path / "gan.pt"), "--samples-dir",
                            str(tmp_path / "samples"), "--epochs", "90", "--n-wavs", "0"]) == 0
    state = load_checkpoint(tmp_path / "gan.pt")
    assert state["model"] == {"image_size": 64, "latent_dim": 100, "hidden": 256, "norm": "batch"}
    trained = simple_gan.MlpGenerator(**state["model"])
    trained.load_state_dict(state["generator"])
    compute.seed_everything(0)  # as simple_gan.py does before building its generator
    untrained = init_weights(simple_gan.MlpGenerator(**state["model"]))
    real = simple_gan.shrink_chunks(folder, 64)
    latents = torch.randn(64, 100, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before, after = untrained.eval()(latents), trained.eval()(latents)
    spectrum = lambda images: images.mean(dim=(0, 1, 3))  # noqa: E731  [64] rows, low to high frequency
    distance = lambda images: (spectrum(images) - spectrum(real)).abs().mean().item()  # noqa: E731
    assert spectrum(real)[:8].mean() > spectrum(real)[-8:].mean() + 0.5  # real jazz: bass far above treble
    assert distance(after) < 0.4 * distance(before)
    assert spectrum(after)[:8].mean() > spectrum(after)[-8:].mean() + 0.3  # learned the slope
    spread = lambda images: images.std(dim=0).mean().item()  # noqa: E731  how much samples differ, per pixel
    assert spread(after) > 0.5 * spread(real) and spread(after) > 5 * spread(before)


@pytest.mark.parametrize("count, sizes", [(23, [8, 8, 7]), (17, [8, 9]), (8, [8]), (1, [1]), (9, [9])])
def test_batches_never_leave_one_image_alone(count, sizes):
    """BatchNorm cannot normalise one image: a last batch of one joins the one before it."""
    batches = simple_gan.shuffled_batches(count, 8)
    assert [len(batch) for batch in batches] == sizes
    assert sorted(torch.cat(batches).tolist()) == list(range(count))


def test_a_whole_dataset_as_data_names_the_domain_folder_to_pass(dataset, tmp_path, capsys):
    assert simple_gan.main(["--data", str(dataset), "--checkpoint", str(tmp_path / "c" / "gan.pt"),
                            "--samples-dir", str(tmp_path / "s"), "--epochs", "1"]) == 1
    error = capsys.readouterr().err
    assert "is a whole dataset" in error and f"--data {dataset / 'jazz_train'}" in error
    assert not (tmp_path / "c").exists() and not (tmp_path / "s").exists()
