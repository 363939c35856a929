"""How a command ends: exit codes, the project's errors as one line, SIGTERM/SIGHUP unwinding like Ctrl-C, child
processes that are passed the signal, and a console that prints any file name."""

from __future__ import annotations

import argparse
import codecs
import contextlib
import math
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

from pop2jazz.errors import NonFiniteLoss, UserError


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


def run_command(function: Callable, args, interrupted: str = "") -> int:
    """function(args) as a command's exit code: its own; 1 after printing a UserError (bad input, an output that
    cannot be written) as one line; 2 after a NonFiniteLoss; 128 + the signal after Ctrl-C, SIGTERM or SIGHUP,
    which unwind alike (temporary files removed), printing `interrupted` (what was kept). Any other exception is a
    bug and shows its traceback. File names always print."""
    safe_console()
    try:
        with interruptible():
            return function(args)
    except UserError as error:
        print(f"\nerror: {error}", file=sys.stderr)
        return 2 if isinstance(error, NonFiniteLoss) else 1
    except KeyboardInterrupt as interruption:
        signum = getattr(interruption, "signum", signal.SIGINT)
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        print(f"\ninterrupted ({name}): no file was left half-written{'; ' if interrupted else ''}{interrupted}",
              file=sys.stderr)
        return 128 + signum  # the shell's code for a process a signal ended: 130 for Ctrl-C, 143 for SIGTERM


# argparse types for numeric options: a value out of range is refused at once, with the range, as exit code 2

def _number(kind: type, text: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'a whole number' if kind is int else 'a number'}") \
            from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number")
    return value


def int_range(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number in [low, high] (no upper bound when `high` is None)."""
    allowed = f">= {low}" if high is None else f"in {low}..{high}"

    def parse(text: str) -> int:
        value = _number(int, text)
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{value} is out of range: must be a whole number {allowed}")
        return value

    parse.__name__ = "int"  # how argparse names the type in its own messages
    return parse


def float_range(low: float, high: float | None = None, low_open: bool = False, high_open: bool = False
                ) -> Callable[[str], float]:
    """An argparse type: a finite number between `low` and `high` (no upper bound when None), each end included
    unless `low_open` / `high_open`."""
    if high is None:
        allowed = f"> {low:g}" if low_open else f">= {low:g}"
    else:
        allowed = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def parse(text: str) -> float:
        value = _number(float, text)
        if value < low or (low_open and value == low) or (high is not None and (
                value > high or (high_open and value == high))):
            raise argparse.ArgumentTypeError(f"{text} is out of range: must be {allowed}")
        return value

    parse.__name__ = "float"
    return parse


positive_int = int_range(1)
non_negative_int = int_range(0)
positive_float = float_range(0.0, low_open=True)
non_negative_float = float_range(0.0)
fraction = float_range(0.0, 1.0, high_open=True)  # in [0, 1)


def positive_int_list(text: str) -> list[int]:
    """An argparse type: comma-separated whole numbers >= 1 ('1,4')."""
    return [positive_int(item.strip()) for item in text.split(",")]
