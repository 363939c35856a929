"""The pix2pix U-Net and PatchGAN (model_pix2pix.py)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import model_cyclegan
from model_pix2pix import UnetGenerator, pix2pix_discriminator, unet_levels


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
