"""Run-time set-up shared by the scripts: the device, seeds and RNG state, glibc keeping freed memory, how a
command ends (exit codes, SIGTERM/SIGHUP unwinding like Ctrl-C, a console that prints any file name), and for
train.py the speed options: several processes under torchrun, channels_last, cuDNN autotuning, torch.compile.

    uv run torchrun --nproc_per_node=4 train.py --workers 4      # 4 GPUs (nccl), or 4 CPU processes (gloo)
    uv run train.py --compile --channels-last                     # one GPU

Each option is one flag or one environment check; without torchrun train.py stays a single process.
Multi-process training is PyTorch's DistributedDataParallel: every rank starts from rank 0's weights, takes its
own share of the chunks, and gradients are averaged across ranks in backward, so the weights stay identical.
InstanceNorm keeps no running statistics, so nothing else needs syncing; each rank keeps its own image pool.
"""

from __future__ import annotations

import atexit
import codecs
import contextlib
import ctypes
import dataclasses
import math
import os
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset, DistributedSampler

from outputs import OutputError, OutputFormatError


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
    add("--workers", type=int, default=None, help="DataLoader worker processes per training process "
        "(default: 4 with CUDA, 0 on the CPU)")
    add("--compile", action="store_true", help="torch.compile the networks for training (minutes to start)")
    add("--channels-last", action="store_true", help="NHWC weights and activations (faster convolutions on "
        "tensor cores)")


def data_sampler(dataset: Dataset, ranks: Ranks) -> DistributedSampler | None:
    """This rank's share of `dataset` (items rank, rank + world_size, ...), or None for a single process.

    No shuffling here: data.UnpairedChunks draws its own order per epoch, the same on every rank.
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


class NonFiniteLoss(ArithmeticError):
    """Training produced a NaN or infinite loss; the message says where and that the last checkpoint is intact."""


def check_finite(losses: dict[str, float], where: str, checkpoint: Path) -> None:
    """Raise NonFiniteLoss naming `where` (e.g. "epoch 2, step 1") when any of `losses` is NaN or infinite."""
    if not all(math.isfinite(value) for value in losses.values()):
        raise NonFiniteLoss(f"non-finite loss at {where}: {losses}. Stopped; {checkpoint} still holds the last "
                            f"good epoch. Try a lower --lr.")


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised wherever the program is, so that it unwinds exactly as on Ctrl-C: every `finally`
    removes its temporary files and no output is left half-written."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


TERMINATION_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise Interrupted; the previous handlers come back after it. Nothing
    changes outside the main thread, where Python runs no signal handler."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Interrupted(signum)

    previous = {number: signal.signal(number, handler) for number in TERMINATION_SIGNALS}
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


def run_child(command: list[str], **options) -> subprocess.CompletedProcess:
    """subprocess.run(command, **options), except that when this process is interrupted the child is not killed
    outright: SIGTERM or SIGHUP is passed on to it (Ctrl-C reached it already) and it is waited for, so that it
    removes its temporary files as this process does; then the interruption goes on."""
    with subprocess.Popen(command, **options) as process:
        try:
            stdout, stderr = process.communicate()
        except KeyboardInterrupt as interruption:
            if hasattr(interruption, "signum"):
                process.send_signal(interruption.signum)
            process.wait()
            raise
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def printable(text: str) -> str:
    """`text` (a file name, a message) with the bytes of a name that is not valid UTF-8 escaped as \\xe9, as the
    console shows them: for places that take only valid Unicode, such as a plot's title or a UTF-8 report."""
    return os.fsencode(text).decode("utf-8", "backslashreplace")


def _escape_unprintable(error: UnicodeError) -> tuple[str, int]:
    """Codec error handler: what the console cannot show, escaped: a byte of a file name that is not valid UTF-8
    as \\xe9 (see printable), any other character as a \\u escape."""
    return printable(error.object[error.start:error.end]).encode("ascii", "backslashreplace").decode(), error.end


def safe_console() -> None:
    """Make printing a file name never fail: stdout and stderr escape what their encoding cannot show (a Latin-1
    byte in a name, Cyrillic on an ASCII console) instead of raising UnicodeEncodeError."""
    try:
        codecs.lookup_error("pop2jazz.escape")
    except LookupError:
        codecs.register_error("pop2jazz.escape", _escape_unprintable)
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="pop2jazz.escape")


def run_command(function: Callable, args, user_errors: tuple[type[Exception], ...], interrupted: str = "") -> int:
    """function(args) as a command's exit code: its own; 1 after printing one of `user_errors` or an output that
    cannot be written; 2 after printing a NonFiniteLoss; 128 + the signal after Ctrl-C, SIGTERM or SIGHUP, which
    unwind alike (temporary files removed), printing `interrupted` (what was kept). File names always print."""
    safe_console()
    try:
        with interruptible():
            return function(args)
    except (*user_errors, OutputError, OutputFormatError) as error:
        print(f"\nerror: {error}", file=sys.stderr)
        return 1
    except NonFiniteLoss as error:
        print(f"\nerror: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interruption:
        signum = getattr(interruption, "signum", signal.SIGINT)
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        print(f"\ninterrupted ({name}): no file was left half-written{'; ' if interrupted else ''}{interrupted}",
              file=sys.stderr)
        return 128 + signum  # the shell's code for a process a signal ended: 130 for Ctrl-C, 143 for SIGTERM
