"""The project's errors: one base, UserError, for everything a user can cause and fix (a bad song, a wrong folder,
a checkpoint of another kind, a disk that is full). commands.run_command prints a UserError as one line; any other
exception is a bug and keeps its traceback.

Each subclass lives with what raises it (AudioError in audio_files, DataError in dataset, CheckpointError in
checkpoint, OutputError in output_files); the ones without such a home are here.
"""

from __future__ import annotations


class UserError(Exception):
    """Input or an environment the user can fix; the message names the file and says what to do."""


class NonFiniteLoss(UserError, ArithmeticError):
    """Training produced a NaN or infinite loss; the message says where and that the last checkpoint is intact.
    Commands exit with 2 on it."""


class InputError(UserError):
    """A song, a folder or an option that cannot be used as given (too short, nothing to convert, two songs for
    one output)."""


class MissingFileError(UserError, FileNotFoundError):
    """A song folder, a checkpoint or the clips that are not where they were looked for."""


class WouldOverwriteError(UserError, FileExistsError):
    """An output that exists and is not ours to replace (pass --overwrite, or -o elsewhere)."""


class ChildFailed(UserError, RuntimeError):
    """A command this one ran (train.py from benchmark.py, a variant of the A/B) failed; the message holds the end of
    its output."""


class ServeError(UserError, OSError):
    """The browser page cannot listen where asked (the port is taken)."""
