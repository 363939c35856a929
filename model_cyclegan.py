"""CycleGAN networks: ResNet generator and PatchGAN discriminator (Zhu et al. 2017, arXiv 1703.10593).

Images here are spectrogram chunks: [batch, 1, n_bins, frames] in [-1, 1] (see spectrogram.py).
The layer lists follow the paper's appendix 7.2 so they can be read against it line by line.
"""

from __future__ import annotations

import random

import torch
from torch import nn


class ResnetBlock(nn.Module):
    """R<channels>: two 3x3 convolutions with reflection padding and InstanceNorm, plus the identity.

    [B, C, H, W] -> [B, C, H, W]. He et al. 2016, as used in Zhu et al. 2017 appendix 7.2.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


UPSAMPLING = ("transpose", "resize")  # the choices of train.py --upsample
OUTPUTS = ("direct", "residual")  # the choices of train.py --output
RESIDUAL_SCALE = 0.5  # a residual generator moves a bin by at most 0.5 in the image, i.e. +-25 dB


def upsampling_layer(reads: int, writes: int, upsample: str) -> list[nn.Module]:
    """The convolution of u<writes>, doubling both sides: [B, reads, H, W] -> [B, writes, 2H, 2W].

    "transpose": a 3x3 transposed convolution with stride 2, the paper's (Zhu et al. 2017 appendix 7.2).
    "resize": nearest-neighbour x2, then a 3x3 convolution with reflection padding, which cannot make the
    checkerboard pattern of a stride-2 transposed convolution whose kernel overlaps its neighbours unevenly
    (Odena, Dumoulin & Olah 2016, "Deconvolution and Checkerboard Artifacts", Distill).
    Raises ValueError for another name.
    """
    if upsample == "transpose":
        return [nn.ConvTranspose2d(reads, writes, 3, stride=2, padding=1, output_padding=1)]
    if upsample == "resize":
        return [nn.Upsample(scale_factor=2, mode="nearest"), nn.ReflectionPad2d(1), nn.Conv2d(reads, writes, 3)]
    raise ValueError(f"unknown upsampling {upsample!r}: use one of {', '.join(UPSAMPLING)}")


class ResnetGenerator(nn.Module):
    """The CycleGAN generator: c7s1-64, d128, d256, R256 x n_blocks, u128, u64, c7s1-1, tanh.

    Zhu et al. 2017 appendix 7.2 (the 9-block version, for 256x256 images and up). `width` scales every layer
    (64 in the paper); `n_blocks` counts the residual blocks (9 in the paper); `upsample` picks the convolution
    of u128 and u64 (see `upsampling_layer`; "transpose" is the paper's).
    `output` "direct" (the paper's) returns tanh(h) of the last convolution's output h; "residual" returns
    clamp(x + residual_scale * tanh(h), -1, 1), a change to its input x. In our dB-linear image that change is
    a time-frequency gain mask of at most +-residual_scale * (db_max - db_min) / 2 dB (+-25 dB), so the song's
    fine structure and timing pass through. `start_as_identity` zeroes the last convolution, after which the
    residual generator returns its input exactly; init_weights calls it.
    Input [B, channels, H, W] with H and W multiples of 4 -> output of the same shape in [-1, 1].
    Raises ValueError for other sizes, or an unknown `upsample` or `output`.
    """

    def __init__(self, channels: int = 1, width: int = 64, n_blocks: int = 9, upsample: str = "transpose",
                 output: str = "direct", residual_scale: float = RESIDUAL_SCALE):
        super().__init__()
        if output not in OUTPUTS:
            raise ValueError(f"unknown generator output {output!r}: use one of {', '.join(OUTPUTS)}")
        self.output, self.residual_scale = output, residual_scale
        layers: list[nn.Module] = [  # c7s1-64
            nn.ReflectionPad2d(3), nn.Conv2d(channels, width, 7), nn.InstanceNorm2d(width), nn.ReLU(True)]
        for multiple in (1, 2):  # d128, d256
            layers += [nn.Conv2d(width * multiple, width * multiple * 2, 3, stride=2, padding=1),
                       nn.InstanceNorm2d(width * multiple * 2), nn.ReLU(True)]
        layers += [ResnetBlock(width * 4) for _ in range(n_blocks)]  # R256 x 9
        for multiple in (4, 2):  # u128, u64
            layers += [*upsampling_layer(width * multiple, width * multiple // 2, upsample),
                       nn.InstanceNorm2d(width * multiple // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, channels, 7)]  # c7s1-1
        layers += [nn.Tanh()] if output == "direct" else []
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f"generator input sides must be multiples of 4, got {tuple(x.shape[-2:])}")
        if self.output == "direct":
            return self.model(x)
        return torch.clamp(x + self.residual_scale * torch.tanh(self.model(x)), -1.0, 1.0)

    def start_as_identity(self) -> None:
        """Zero the last convolution (weights and bias): a residual generator then returns its input."""
        if self.output == "residual":
            nn.init.zeros_(self.model[-1].weight)
            nn.init.zeros_(self.model[-1].bias)


class PatchDiscriminator(nn.Module):
    """The 70x70 PatchGAN: C64-C128-C256-C512, then a 1-channel 4x4 convolution.

    Ck = 4x4 convolution with k filters, norm, LeakyReLU(0.2); stride 2 except C512 and the last layer
    (stride 1); no norm on C64. Zhu et al. 2017 appendix 7.2, Isola et al. 2017 appendix 6.1.2.
    `norm_layer` is InstanceNorm2d for CycleGAN and BatchNorm2d for pix2pix; `width` is 64 in the paper.
    `spectral_norm` divides every convolution's weight by its largest singular value (Miyato et al. 2018,
    arXiv 1802.05957; torch.nn.utils.parametrizations.spectral_norm), which bounds how steeply the score can
    change with the input.
    Input [B, channels, H, W] -> realness scores [B, 1, H/8 - 2, W/8 - 2] (62x62 for 512x512), one per
    70x70 receptive field.
    """

    def __init__(self, channels: int = 1, width: int = 64, norm_layer: type[nn.Module] = nn.InstanceNorm2d,
                 spectral_norm: bool = False):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        for multiple, stride in ((2, 2), (4, 2), (8, 1)):  # C128, C256, C512
            layers += [nn.Conv2d(width * multiple // 2, width * multiple, 4, stride=stride, padding=1),
                       norm_layer(width * multiple), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(width * 8, 1, 4, stride=1, padding=1)]
        if spectral_norm:
            layers = [nn.utils.parametrizations.spectral_norm(layer) if isinstance(layer, nn.Conv2d) else layer
                      for layer in layers]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def init_weights(module: nn.Module, std: float = 0.02) -> nn.Module:
    """Draw conv weights from N(0, std) and zero the biases (Zhu et al. 2017 section 4); norm scales from N(1, std).

    A spectrally normalised weight is drawn in its original (unnormalised) form. Networks with a
    `start_as_identity` method (the residual generator) then call it. Returns `module`.
    """
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            normalised = nn.utils.parametrize.is_parametrized(layer, "weight")
            nn.init.normal_(layer.parametrizations.weight.original if normalised else layer.weight, 0.0, std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, (nn.BatchNorm2d, nn.InstanceNorm2d)) and layer.weight is not None:
            nn.init.normal_(layer.weight, 1.0, std)
            nn.init.zeros_(layer.bias)
    for layer in module.modules():
        if hasattr(layer, "start_as_identity"):
            layer.start_as_identity()
    return module


class ImagePool:
    """A history of up to `size` generated images for the discriminator (Shrivastava et al. 2017; Zhu et al. 4).

    query(images [B, C, H, W]) returns a batch of the same shape: each image is, with probability 0.5 once the
    pool is full, swapped for a stored older one (which the new image replaces). size 0 disables the pool.
    """

    def __init__(self, size: int = 50):
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        returned = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                returned.append(image)
            elif random.random() < 0.5:
                index = random.randrange(self.size)
                returned.append(self.images[index].to(image.device, copy=True))
                self.images[index] = image.clone()
            else:
                returned.append(image)
        return torch.cat(returned)

    def state_dict(self) -> dict:
        return {"size": self.size, "images": [image.cpu() for image in self.images]}

    def load_state_dict(self, state: dict) -> None:
        """Restore what state_dict saved; the images stay where the checkpoint was mapped to and move to the
        device of the next query's images when drawn."""
        self.size = state["size"]
        self.images = list(state["images"])
