"""The pix2pix U-Net and PatchGAN (model_pix2pix.py), and CycleGAN with the U-Net (train.py --generator unet)."""

from __future__ import annotations

import copy
import math

import pytest
import soundfile as sf
import torch
from torch import nn

import convert
import model_cyclegan
import train
from model_pix2pix import UnetGenerator, pix2pix_discriminator, unet_levels
from pop2jazz.checkpoint import build_generator, generator_from, load_checkpoint
from pop2jazz.spectrogram import Representation, load_audio


@pytest.mark.parametrize("size, levels", [((512, 512), 9), ((256, 256), 8), ((64, 64), 6), ((512, 256), 8),
                                          ((512, 384), 7), ((16, 16), 4)])
def test_unet_output_has_the_input_shape(size, levels):
    torch.manual_seed(0)
    net = model_cyclegan.init_weights(UnetGenerator(1, 4, size)).eval()
    x = torch.rand(2, 1, *size) * 2 - 1
    y = net(x)
    assert net.levels == unet_levels(size) == levels
    assert y.shape == x.shape
    assert y.abs().max() <= 1.0
    assert y.std() > 0  # not a constant image


@pytest.mark.parametrize("size", [(8, 8), (100, 100), (512, 200), (40, 64), (0, 64)])
def test_unet_refuses_sizes_it_cannot_take(size):
    with pytest.raises(ValueError, match=f"cannot take {size[0]}x{size[1]} images.*multiples of 16"):
        UnetGenerator(1, 4, size)


def test_unet_refuses_an_input_its_depth_does_not_divide():
    net = UnetGenerator(1, 4, (64, 64))
    with pytest.raises(ValueError, match=r"6-level U-Net \(built for 64x64\) needs input sides that are "
                                         r"multiples of 64, got \(48, 64\)"):
        net(torch.zeros(1, 1, 48, 64))
    assert net(torch.zeros(1, 1, 128, 64)).shape == (1, 1, 128, 64)  # multiples of 64 go through


def test_unet_layers_follow_the_paper():
    """Isola et al. 2017 appendix 6.1.1 for 256x256: encoder C64-C128-C256-C512-C512-C512-C512-C512, decoder
    layers reading CD512-CD1024-CD1024-C1024-C1024-C512-C256-C128 channels; 54.4 M parameters as in the authors'
    unet_256."""
    net = UnetGenerator(1, 64, (256, 256))
    encoder = [block[0] for block in net.encoder]
    decoder = [block[0] for block in net.decoder] + [net.output[0]]
    assert [conv.out_channels for conv in encoder] == [64, 128, 256, 512, 512, 512, 512, 512]
    assert [conv.in_channels for conv in decoder] == [512, 1024, 1024, 1024, 1024, 512, 256, 128]
    assert all(conv.kernel_size == (4, 4) and conv.stride == (2, 2) for conv in encoder + decoder)
    has = lambda block, kind: any(isinstance(layer, kind) for layer in block)  # noqa: E731
    assert [has(block, nn.BatchNorm2d) for block in net.encoder] == [False] + [True] * 6 + [False]
    assert [has(block, nn.Dropout) for block in net.decoder] == [True] * 3 + [False] * 4
    assert all(isinstance(block[-1], nn.LeakyReLU) for block in net.encoder)
    assert all(type(block[-1]) is nn.ReLU for block in net.decoder)
    assert decoder[-1].out_channels == 1 and isinstance(net.output[-1], nn.Tanh)
    assert sum(p.numel() for p in net.parameters()) == 54_413_313


def test_first_level_skip_carries_a_pixel_to_the_same_place():
    """With the path through the deeper levels cut off, the output still follows the input, within exactly the
    6x6 window that one 4x4 stride-2 convolution and its transpose reach; with the skip cut off too, nothing moves.
    A U-Net without the first-level skip, or with it in the wrong place, fails the first two asserts."""
    torch.manual_seed(0)
    net = UnetGenerator(1, 8, (64, 64)).eval()  # PyTorch's default init: larger signals than N(0, 0.02)
    x = torch.rand(1, 1, 64, 64) * 2 - 1
    nudged = x.clone()
    nudged[0, 0, 32, 32] += 0.5
    window = torch.zeros(64, 64, dtype=torch.bool)
    window[29:35, 29:35] = True  # rows and columns 29..34: what input pixel 32 reaches through one level

    def change(model: nn.Module) -> torch.Tensor:
        with torch.no_grad():
            return (model(nudged) - model(x)).abs()[0, 0]

    # the output convolution reads [decoder (8 channels), encoder level-1 skip (8 channels)]
    skip_only = copy.deepcopy(net)
    skip_only.output[0].weight.data[:8] = 0
    assert change(skip_only)[window].min() > 1e-4
    assert change(skip_only)[~window].max() == 0
    neither = copy.deepcopy(skip_only)
    neither.output[0].weight.data[8:] = 0
    assert change(neither).max() == 0
    full = change(net)  # the whole network: the deeper levels spread a little everywhere, the skip dominates near
    assert full[window].mean() > 5 * full[~window].mean() > 0


def test_pix2pix_discriminator_is_the_cyclegan_class_with_batchnorm():
    torch.manual_seed(0)
    pix2pix, cyclegan = pix2pix_discriminator(2, 8), model_cyclegan.PatchDiscriminator(2, 8)
    assert type(pix2pix) is model_cyclegan.PatchDiscriminator
    norms = lambda net, kind: sum(isinstance(layer, kind) for layer in net.modules())  # noqa: E731
    assert (norms(pix2pix, nn.BatchNorm2d), norms(pix2pix, nn.InstanceNorm2d)) == (3, 0)
    assert (norms(cyclegan, nn.BatchNorm2d), norms(cyclegan, nn.InstanceNorm2d)) == (0, 3)
    convolutions = lambda net: [(layer.weight.shape, layer.stride) for layer in net.modules()  # noqa: E731
                                if isinstance(layer, nn.Conv2d)]
    assert convolutions(pix2pix) == convolutions(cyclegan)
    scores = pix2pix(torch.rand(3, 2, 64, 128))  # the conditional pair: input and output stacked on channels
    assert scores.shape == (3, 1, 64 // 8 - 2, 128 // 8 - 2)


def test_build_generator_picks_the_network_from_the_config():
    unet = build_generator({"generator": "unet", "width": 4, "n_blocks": 9, "image_size": [64, 128]})
    assert isinstance(unet, UnetGenerator) and unet.image_size == (64, 128)
    layers = list(unet.modules())
    assert any(isinstance(layer, nn.InstanceNorm2d) for layer in layers)
    assert not any(isinstance(layer, (nn.BatchNorm2d, nn.Dropout)) for layer in layers)
    resnet = build_generator({"width": 4, "n_blocks": 2})  # configs from before --generator
    assert isinstance(resnet, model_cyclegan.ResnetGenerator)
    with pytest.raises(ValueError, match="unknown generator 'vgg'; this version knows resnet, unet"):
        build_generator({"generator": "vgg", "width": 4})


def test_cyclegan_with_unet_trains_resumes_and_converts(dataset, gtzan_mini, tmp_path):
    run = ["--data", str(dataset), "--checkpoint-dir", str(tmp_path / "ck"), "--samples-dir", str(tmp_path / "s"),
           "--width", "8", "--steps-per-epoch", "2", "--griffin-lim-iters", "2"]
    assert train.main([*run, "--generator", "unet", "--epochs", "1"]) == 0
    assert train.main([*run, "--resume", "--epochs", "2"]) == 0  # no --generator: the checkpoint's choice holds
    state = load_checkpoint(tmp_path / "ck" / "latest.pt")
    assert state["model"]["generator"] == "unet" and state["model"]["image_size"] == [512, 512]
    assert [row["epoch"] for row in state["history"]] == [1, 2]
    assert all(math.isfinite(row[name]) and row[name] > 0 for row in state["history"] for name in train.LOSSES)
    assert (tmp_path / "s" / "epoch_002.png").stat().st_size > 0

    generator, rep = generator_from(state), Representation.from_dict(state["representation"])
    assert isinstance(generator, UnetGenerator) and not generator.training
    song = sorted((gtzan_mini / "pop").glob("*.wav"))[0]
    output = tmp_path / "song_jazz.wav"
    assert convert.main([str(song), "-o", str(output), "--checkpoint", str(tmp_path / "ck" / "latest.pt"),
                         "--griffin-lim-iters", "2"]) == 0
    audio, sample_rate = sf.read(str(output))
    assert sample_rate == rep.sample_rate
    assert len(audio) == len(load_audio(song, rep.sample_rate))
    assert 0 < abs(audio).max() <= 0.99 + 1e-4
