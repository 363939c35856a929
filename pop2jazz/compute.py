"""Training's run-time: the device, seeds and RNG state, glibc keeping freed memory, and train.py's speed
options: bf16 autocast, several processes under torchrun, channels_last, cuDNN autotuning, torch.compile, and a
time budget.

    uv run torchrun --nproc_per_node=4 train.py --workers 4      # 4 GPUs (nccl), or 4 CPU processes (gloo)
    uv run train.py --compile --channels-last                     # one GPU
    uv run train.py --no-bf16 --max-minutes 30                    # float32 even on a native-bf16 CPU, half an hour

Each option is one flag or one environment check; without torchrun train.py stays a single process.
Multi-process training is PyTorch's DistributedDataParallel: every rank starts from rank 0's weights, takes its
own share of the chunks, and gradients are averaged across ranks in backward, so the weights stay identical.
InstanceNorm keeps no running statistics, so nothing else needs syncing; each rank keeps its own image pool.
"""

from __future__ import annotations

import argparse
import atexit
import ctypes
import dataclasses
import math
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset, DistributedSampler

from pop2jazz.commands import non_negative_float, non_negative_int
from pop2jazz.errors import NonFiniteLoss


def pick_device(name: str = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU; otherwise torch.device(name)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's generators (CUDA's too) with `seed`."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """The state of Python's and torch's generators (CPU and CUDA), as tensors and plain values for a checkpoint."""
    return {"python": random.getstate(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict) -> None:
    """Restore what `rng_state` saved (CUDA's only where CUDA is present and it was saved)."""
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"].cpu())
    if torch.cuda.is_available() and state["cuda"]:
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def native_bf16(device: torch.device) -> bool:
    """True on CUDA, and on a CPU whose instruction set does bf16 arithmetic (AVX512-BF16 or AMX), as torch's own
    CPU capability checks report it; False on other CPUs (AVX2 alone), where oneDNN emulates bf16 through
    float32 conversions and autocast makes convolutions slower, not faster."""
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def use_bf16(requested: bool | None, device: torch.device) -> bool:
    """Whether training runs its networks under bf16 autocast: always on CUDA (where float32 convolutions gain
    nothing), else as --bf16 / --no-bf16 say, and when neither is given, where the CPU does bf16 natively
    (`native_bf16`). There it trains 1.5-1.7x faster at the CPU size, and the same model as far as the judges hear
    (600 steps, 2 seeds each, experiments/ab.py --runs float32:0,float32:1,bf16:0,bf16:1; docs/speed.md); where
    bf16 is emulated it is far slower, so float32 is the default there."""
    if device.type == "cuda":
        return True
    return native_bf16(device) if requested is None else requested


def bf16_note(requested: bool | None, bf16: bool, device: torch.device) -> str | None:
    """A line for the user when the precision is not what --bf16 / --no-bf16 (`requested`) may lead them to expect:
    --no-bf16 on CUDA, which use_bf16 overrides, or bf16 autocast (`bf16`, as use_bf16 decided) on a CPU without
    native bf16; else None."""
    if device.type == "cuda" and requested is False:
        return "note: --no-bf16 is ignored on CUDA: training there always runs under bf16 autocast"
    if not bf16 or device.type != "cpu" or native_bf16(device):
        return None
    return (f"note: this CPU does not do bf16 natively (torch reports {torch.backends.cpu.get_cpu_capability()}): "
            f"bf16 autocast is emulated here and far slower than float32 (a 16-channel 3x3 convolution took 200x "
            f"as long on an AVX2 EPYC); leave out --bf16")


class Deadline:
    """A wall-clock budget of `minutes` from construction (0: none): `passed` turns True once it is spent."""

    def __init__(self, minutes: float):
        self.seconds = 60.0 * minutes
        self.start = time.monotonic()

    @property
    def passed(self) -> bool:
        return self.seconds > 0 and time.monotonic() - self.start >= self.seconds


def keep_freed_memory() -> bool:
    """Have glibc keep freed memory for reuse instead of handing it back to the kernel: True where applied.

    The networks allocate and free tensors of tens to hundreds of MB in every layer. glibc returns blocks over
    32 MB to the kernel at once (munmap) and the next one page-faults in afresh: on 2 CPU cores that took the
    paper-size generator from 1.1 to 1.9 s per 512x512 window. mallopt(M_MMAP_MAX, 0) serves large blocks from
    the heap and M_TRIM_THRESHOLD keeps the heap's top: the effect of the jemalloc or tcmalloc that PyTorch's
    performance tuning guide recommends for CPUs, with no new library. Freed blocks stay in the process: peak
    RSS converting with the paper-size generator went from 1.55 to 1.87 GB. Does nothing off glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_max = -1, -4  # from glibc's malloc.h
    return bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 2 ** 31 - 1))


@dataclasses.dataclass(frozen=True)
class Ranks:
    """This process's place among the torchrun processes; Ranks() for a single process."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes checkpoints, samples and logs."""
        return self.rank == 0


def setup_distributed(device: torch.device) -> tuple[Ranks, torch.device]:
    """Join the process group torchrun describes in RANK, WORLD_SIZE and LOCAL_RANK: (ranks, this rank's device).

    nccl on CUDA with one GPU per process (cuda:LOCAL_RANK), gloo on the CPU. Without torchrun (no WORLD_SIZE):
    (Ranks(), device) and nothing else happens. Ranks other than 0 print nothing to stdout, as in torchvision's
    reference scripts; their errors still reach stderr.
    """
    if "WORLD_SIZE" not in os.environ:
        return Ranks(), device
    ranks = Ranks(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]))
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=ranks.rank,
                            world_size=ranks.world_size)
    atexit.register(dist.destroy_process_group)  # train.main has many exits; every one must leave the group
    if not ranks.is_main:
        sys.stdout = open(os.devnull, "w")
    return ranks, device


def add_arguments(add: Callable) -> None:
    """The speed flags, added with `add` (an argparse parser's add_argument)."""
    add("--bf16", action=argparse.BooleanOptionalAction, default=None,
        help="bf16 autocast for the generators and discriminators (the losses, image pools and optimiser state stay "
        "float32). Always on with CUDA. On the CPU on by default where it does bf16 natively (AVX512-BF16 or AMX, as "
        "torch reports it): 1.5-1.7x faster, the same model over 600 steps; off by default elsewhere, where bf16 is "
        "emulated and far slower (asked for there, train.py says so). --no-bf16 for float32 everywhere but CUDA")
    add("--max-minutes", type=non_negative_float, default=0.0, help="stop at the end of the epoch during which "
        "this many minutes of training have passed, checkpoint written; carry on with --resume (default: 0 = no "
        "limit)")
    add("--workers", type=non_negative_int, default=None, help="DataLoader worker processes per training process "
        "(default: 4 with CUDA, 0 on the CPU)")
    add("--compile", action="store_true", help="torch.compile the networks for training (minutes to start)")
    add("--channels-last", action="store_true", help="NHWC weights and activations (faster convolutions on "
        "tensor cores)")


def data_sampler(dataset: Dataset, ranks: Ranks) -> DistributedSampler | None:
    """This rank's share of `dataset` (items rank, rank + world_size, ...), or None for a single process.

    No shuffling here: dataset.UnpairedChunks draws its own order per epoch, the same on every rank.
    """
    if ranks.world_size == 1:
        return None
    return DistributedSampler(dataset, ranks.world_size, ranks.rank, shuffle=False, drop_last=True)


def loader_workers(requested: int | None, device: torch.device) -> int:
    """DataLoader worker processes: `requested`, else 4 feeding a GPU and 0 on the CPU, where the model needs
    every core."""
    if requested is not None:
        return requested
    return min(4, os.cpu_count() or 1) if device.type == "cuda" else 0


def training_forms(networks: list[nn.Module], device: torch.device, ranks: Ranks, channels_last: bool = False,
                   compile: bool = False) -> list[nn.Module]:
    """The forms of `networks` the training step calls: the same parameters, wrapped as the options ask.

    channels_last converts the weights in place (NHWC convolutions are faster on tensor cores); under torchrun
    each network is wrapped in DistributedDataParallel; compile wraps that in torch.compile. Checkpoints and
    samples keep using the plain networks, whose state_dict keys stay unprefixed. Turns on cuDNN autotuning on
    CUDA: the chunks always have the same shape, so the search runs once.
    """
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    forms = []
    for network in networks:
        if channels_last:
            network.to(memory_format=torch.channels_last)
        if ranks.world_size > 1:
            network = DistributedDataParallel(network, device_ids=[device.index] if device.type == "cuda" else None)
        forms.append(torch.compile(network) if compile else network)
    return forms


def mean_across_ranks(values: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    """The mean of `values` over all ranks (itself for one process): the logged losses cover every shard, and
    every rank sees the same numbers, so they stop together on a non-finite loss."""
    if ranks.world_size == 1:
        return values
    values = values.detach().clone()
    dist.all_reduce(values)
    return values / ranks.world_size


def check_finite(losses: dict[str, float], where: str, checkpoint: Path) -> None:
    """Raise NonFiniteLoss naming `where` (e.g. "epoch 2, step 1") when any of `losses` is NaN or infinite."""
    if not all(math.isfinite(value) for value in losses.values()):
        raise NonFiniteLoss(f"non-finite loss at {where}: {losses}. Stopped; {checkpoint} still holds the last "
                            f"good epoch. Try a lower --lr.")
