"""Errors a user can cause. The CLI prints them as one line (no traceback unless --debug)."""


class GanzooError(Exception):
    """A mistake in user input: the message names the input and the fix."""


class PluginError(GanzooError):
    """A plugin failed to import or register, or two plugins clash."""


class GanzooWarning(UserWarning):
    """Something the user should know that did not stop the work (a skipped file, a recomputed cache
    entry, which of two same-named models was loaded). The CLI prints it as one ``ganzoo: warning:`` line."""
