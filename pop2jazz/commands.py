"""How a command ends: exit codes, the project's errors as one line, SIGTERM/SIGHUP unwinding like Ctrl-C, child
processes that are passed the signal, and a console that prints any file name."""

from __future__ import annotations

import codecs
import contextlib
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
