"""The sound-quality levers (train.py --upsample, --output, --spectral-norm) and the A/B script that judges them."""

from __future__ import annotations

import json
import math
import sys

import pytest
import torch
from torch import nn

import train
from conftest import ROOT
from model_cyclegan import OUTPUTS, UPSAMPLING, PatchDiscriminator, ResnetGenerator, init_weights
from pop2jazz.checkpoint import build_discriminator, build_generator, generator_from, load_checkpoint
from pop2jazz.metrics import checkerboard_power

sys.path.insert(0, str(ROOT / "experiments"))
import ab  # noqa: E402


@pytest.mark.parametrize("upsample", UPSAMPLING)
@pytest.mark.parametrize("output", OUTPUTS)
def test_every_generator_option_keeps_the_shape_and_range(upsample, output):
    torch.manual_seed(0)
    generator = init_weights(ResnetGenerator(1, 4, 1, upsample, output))
    image = torch.rand(2, 1, 64, 128) * 2 - 1
    result = generator(image)
    assert result.shape == image.shape and result.abs().max() <= 1.0
    convolutions = [type(layer) for layer in generator.modules() if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d))]
    assert convolutions.count(nn.ConvTranspose2d) == (2 if upsample == "transpose" else 0)
    assert isinstance(generator.model[-1], nn.Tanh) == (output == "direct")


def test_spectral_norm_keeps_the_patchgan_shape_and_bounds_every_convolution():
    torch.manual_seed(0)
    discriminator = init_weights(PatchDiscriminator(1, 8, spectral_norm=True))
    for _ in range(30):  # each training-mode pass runs one power iteration of the singular value estimate
        scores = discriminator(torch.rand(3, 1, 64, 128))
    assert scores.shape == (3, 1, 64 // 8 - 2, 128 // 8 - 2)
    convolutions = [layer for layer in discriminator.modules() if isinstance(layer, nn.Conv2d)]
    assert len(convolutions) == 5
    for layer in convolutions:  # the weight as used, divided by its estimated largest singular value
        sigma = torch.linalg.matrix_norm(layer.weight.detach().flatten(1), ord=2)
        assert sigma == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_resize_upsampling_answers_an_impulse_without_a_period_2_pattern(seed):
    """A single bright pixel on silence: the share of the response's power at the image's three period-2
    frequencies. An image with no structure there (white noise) has 3 / pixels = 1.8e-4; measured 0.2-2.1e-4
    for resize and 0.005-0.039 (the checkerboard) for the paper's transposed convolutions."""
    shares = {}
    for upsample in UPSAMPLING:
        torch.manual_seed(seed)
        generator = init_weights(ResnetGenerator(1, 8, 2, upsample)).eval()
        impulse = -torch.ones(1, 1, 128, 128)
        impulse[0, 0, 64, 64] = 1.0
        with torch.no_grad():
            response = generator(impulse)[0, 0]
        response = response - response.mean()
        shares[upsample] = checkerboard_power(response) / response.pow(2).mean().item()
    assert shares["resize"] < 2 * 3 / 128 ** 2
    assert shares["transpose"] > 10 * shares["resize"]


def test_the_residual_generator_starts_as_the_identity():
    """Its last convolution starts at zero (weights and bias), so out = clamp(x + s * tanh(0)) = x exactly:
    tolerance 0, whatever the input."""
    torch.manual_seed(0)
    config = {"generator": "resnet", "width": 8, "n_blocks": 2, "output": "residual", "upsample": "resize"}
    generator = init_weights(build_generator(config))
    image = torch.rand(2, 1, 64, 64) * 2 - 1
    assert torch.equal(generator(image), image)


def test_the_residual_change_is_bounded_to_25_db():
    generator = ResnetGenerator(1, 4, 1, output="residual")
    nn.init.constant_(generator.model[-1].bias, 100.0)  # tanh saturates at +1
    image = torch.full((1, 1, 32, 32), -0.8)
    assert torch.allclose(generator(image), torch.full_like(image, -0.3))  # +0.5 in the image: +25 dB


def test_old_checkpoints_load_as_the_paper_model():
    state = load_checkpoint(ROOT / "tests" / "fixtures" / "cyclegan_format1.pt")
    assert not {"upsample", "output", "spectral_norm"} & set(state["model"])
    generator, discriminator = build_generator(state["model"]), build_discriminator(state["model"])
    assert generator.output == "direct" and isinstance(generator.model[-1], nn.Tanh)
    assert any(isinstance(layer, nn.ConvTranspose2d) for layer in generator.modules())
    assert not any(nn.utils.parametrize.is_parametrized(layer) for layer in discriminator.modules())
    generator.load_state_dict(state["generator_ab"])
    discriminator.load_state_dict(state["discriminator_a"])


def test_training_with_every_lever_saves_them_and_conversion_follows(small_chunks, tmp_path):
    assert train.main(["--data", str(small_chunks), "--checkpoint-dir", str(tmp_path / "c"), "--samples-dir",
                       str(tmp_path / "s"), "--width", "4", "--n-blocks", "1", "--pool-size", "2", "--epochs", "1",
                       "--steps-per-epoch", "2", "--upsample", "resize", "--output", "residual",
                       "--spectral-norm"]) == 0
    state = load_checkpoint(tmp_path / "c" / "latest.pt")
    assert (state["model"]["upsample"], state["model"]["output"], state["model"]["spectral_norm"]) == \
        ("resize", "residual", True)
    assert math.isfinite(state["history"][0]["loss_d_b"])
    generator = generator_from(state)
    assert generator.output == "residual"
    assert not any(isinstance(layer, nn.ConvTranspose2d) for layer in generator.modules())


def test_the_unet_refuses_the_resnet_levers(capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--generator", "unet", "--output", "residual"])
    assert "shape the ResNet generator" in capsys.readouterr().err


@pytest.mark.slow
def test_the_ab_script_runs_and_tabulates(gtzan_mini, tmp_path):
    """ab.py --quick on two runs (2 steps of a width-4 model each): the table, the JSON, the picture, the WAVs."""
    output = tmp_path / "ab"
    assert ab.main(["--quick", "--runs", "baseline:0,combined:0", "--output", str(output), "--clips",
                    str(gtzan_mini)]) == 0
    figures = json.loads((output / "ab.json").read_text())
    rows = {row["run"]: row for row in figures["runs"]}
    assert set(rows) == {"baseline:0", "combined:0"}
    for row in rows.values():
        assert row["steps"] == 2 and row["held_out_chunks"] > 3  # 3 held-out pop songs, 2-3 chunks each
        for key in ("transfer_rate", "chroma_similarity", "consistency_db", "checkerboard_db", "seconds_per_step"):
            assert math.isfinite(row[key])
        assert 0 <= row["tagger_jazz"] <= 1 and 0 <= row["tagger_jazz_over_pop"] <= 1 and row["tagger_kid"] > -1
    # an untrained residual generator is the identity: the song's chroma, an inversion from its own phase
    assert rows["combined:0"]["chroma_similarity"] > 0.99 and rows["combined:0"]["consistency_db"] < -30
    table = (output / "ab.md").read_text()
    assert "| baseline:0 | `paper` |" in table and "Verdicts" in table
    assert (output / "ab.png").stat().st_size > 50_000 and (output / "losses.png").stat().st_size > 10_000
    assert {path.name for path in output.glob("*.wav")} == {"input.wav", "baseline_seed0.wav", "combined_seed0.wav"}
