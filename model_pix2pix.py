"""Pix2pix networks: the U-Net generator and the BatchNorm PatchGAN (Isola et al. 2017, arXiv 1611.07004).

Images here are spectrogram chunks: [batch, channels, n_bins, frames] in [-1, 1] (see spectrogram.py).
The U-Net follows the paper's appendix 6.1.1 so it can be read against it line by line. The PatchGAN is the
CycleGAN discriminator class itself with BatchNorm (appendix 6.1.2): one network definition serves both models.
The U-Net is also a CycleGAN generator: `train.py --generator unet` (see checkpoint.build_generator).
"""

from __future__ import annotations

import torch
from torch import nn

from model_cyclegan import PatchDiscriminator

MIN_LEVELS = 4  # C64-C128-C256-C512: the smallest U-Net that still reaches the paper's widest layer


def unet_levels(image_size: tuple[int, int]) -> int:
    """Encoder depth of the U-Net for images [height, width]: the number of exact halvings of both sides.

    Halving stops when the shorter side reaches 1 pixel, as the paper's 8 levels take 256x256 to a 1x1
    bottleneck. Valid sizes are those with at least MIN_LEVELS = 4 levels, i.e. both sides multiples of 16:
    512x512 -> 9 levels (1x1 bottleneck), 256x256 -> 8, 64x64 -> 6, 512x256 -> 8 (2x1), 512x384 -> 7 (4x3).
    Raises ValueError naming the size otherwise.
    """
    height, width = image_size
    levels = 0
    while height % 2 == 0 and width % 2 == 0 and min(height, width) > 1:
        height, width, levels = height // 2, width // 2, levels + 1
    if levels < MIN_LEVELS:
        raise ValueError(f"the U-Net cannot take {image_size[0]}x{image_size[1]} images: both sides must be "
                         f"multiples of {2 ** MIN_LEVELS} (e.g. 512x512, 256x256, 64x64); spectrogram chunks "
                         f"from audio_preprocessing.py are n_fft // 2 bins by a multiple of 64 frames")
    return levels


class UnetGenerator(nn.Module):
    """The pix2pix U-Net generator (Isola et al. 2017 section 3.2.1 and appendix 6.1.1).

    Ck = 4x4 convolution with k filters, stride 2, norm, ReLU; CDk adds 50 % dropout after the norm.
    Encoder: C64-C128-C256-C512-C512-C512-C512-C512 for 256x256 (one level per halving down to the bottleneck,
    see `unet_levels`: 9 levels for 512x512, 6 for 64x64); its ReLUs are leaky (0.2), C64 has no norm, and
    neither has the bottleneck, as in the authors' code (a 1x1 activation normalised over itself is zero).
    Decoder: 4x4 transposed convolutions, stride 2, non-leaky ReLU, each one's output concatenated with the
    encoder activation of the same size (the skip connections, layer i to layer n - i). In the paper's
    notation, which counts the channels each decoder layer reads: CD512-CD1024-CD1024-C1024-C1024-C512-C256-C128;
    the last maps to `channels` outputs with tanh. Dropout sits in the first three decoder layers.
    `width` scales every layer (64 in the paper); layers are capped at 8 * width channels.
    `norm_layer` is BatchNorm2d in pix2pix; CycleGAN uses InstanceNorm2d. `dropout` = 0 removes it.
    pix2pix infers in training mode (section 3.3: dropout is its only noise, BatchNorm uses the test batch).
    Input [B, channels, H, W] with H and W multiples of 2 ** levels -> output of the same shape in [-1, 1].
    Raises ValueError for an invalid `image_size` (see `unet_levels`) or input size.
    """

    def __init__(self, channels: int = 1, width: int = 64, image_size: tuple[int, int] = (256, 256),
                 norm_layer: type[nn.Module] = nn.BatchNorm2d, dropout: float = 0.5):
        super().__init__()
        self.image_size = tuple(image_size)
        self.levels = unet_levels(self.image_size)
        filters = [width * min(2 ** level, 8) for level in range(self.levels)]  # 64, 128, 256, 512, 512, ...
        self.encoder = nn.ModuleList()
        for level, (reads, writes) in enumerate(zip([channels, *filters], filters)):
            # C64 has no norm; the bottleneck has no norm
            normed = 0 < level < self.levels - 1
            self.encoder.append(nn.Sequential(
                nn.Conv2d(reads, writes, 4, stride=2, padding=1),
                *([norm_layer(writes)] if normed else []), nn.LeakyReLU(0.2, True)))
        self.decoder = nn.ModuleList()
        for step, level in enumerate(range(self.levels - 1, 0, -1)):  # from the bottleneck up to level 1
            reads = filters[level] * (1 if step == 0 else 2)  # the bottleneck has no skip partner
            self.decoder.append(nn.Sequential(
                nn.ConvTranspose2d(reads, filters[level - 1], 4, stride=2, padding=1), norm_layer(filters[level - 1]),
                *([nn.Dropout(dropout)] if step < 3 and dropout > 0 else []), nn.ReLU(True)))
        self.output = nn.Sequential(nn.ConvTranspose2d(filters[0] * 2, channels, 4, stride=2, padding=1), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        multiple = 2 ** self.levels
        if x.shape[-2] % multiple or x.shape[-1] % multiple:
            raise ValueError(f"this {self.levels}-level U-Net (built for {self.image_size[0]}x{self.image_size[1]}) "
                             f"needs input sides that are multiples of {multiple}, got {tuple(x.shape[-2:])}")
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
        skips.pop()  # the bottleneck itself
        for block in self.decoder:
            x = torch.cat([block(x), skips.pop()], dim=1)
        return self.output(x)


def pix2pix_discriminator(channels: int = 2, width: int = 64) -> PatchDiscriminator:
    """The pix2pix 70x70 PatchGAN: model_cyclegan.PatchDiscriminator with BatchNorm (Isola et al. 2017 6.1.2).

    pix2pix's discriminator is conditional: it reads the input and the (real or generated) output concatenated
    along channels, so `channels` = 2 for our 1-channel spectrograms. [B, channels, H, W] -> [B, 1, H/8 - 2, W/8 - 2].
    """
    return PatchDiscriminator(channels, width, norm_layer=nn.BatchNorm2d)
