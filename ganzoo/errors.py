"""Errors a user can cause. The CLI prints them as one line (no traceback unless --debug)."""

import signal


class GanzooError(Exception):
    """A mistake in user input: the message names the input and the fix."""


class PluginError(GanzooError):
    """A plugin failed to import or register, or two plugins clash."""


class Stopped(GanzooError):
    """Work a signal stopped after saving what it had: not a mistake in the input. The CLI says
    "stopped", not "error", and exits with 128 + the signal's number (130 for SIGINT, 143 for
    SIGTERM), as shells report a process the signal ended."""

    def __init__(self, message: str, signum: int = signal.SIGTERM) -> None:
        super().__init__(message)
        self.signum = int(signum)
        self.exit_code = 128 + self.signum


class GanzooWarning(UserWarning):
    """Something the user should know that did not stop the work (a skipped file, a recomputed cache
    entry, which of two same-named models was loaded). The CLI prints it as one ``ganzoo: warning:`` line."""
