"""The ``ganzoo`` command. A user's mistake ends in one line and a non-zero exit (``--debug`` for tracebacks).

One module per command group, each with ``add_parsers(sub)``: :mod:`~ganzoo.cli.models` (list, plugins),
:mod:`~ganzoo.cli.train` (train, finetune), :mod:`~ganzoo.cli.sample`, :mod:`~ganzoo.cli.hub` (export, push,
catalog), :mod:`~ganzoo.cli.demo`, :mod:`~ganzoo.cli.eval`, :mod:`~ganzoo.cli.latent` (interpolate, arithmetic,
project); the options they share are in :mod:`~ganzoo.cli.options`, the table of commands (name, group, help
line) in :mod:`~ganzoo.cli.commands`. Only the named command's group is imported: ``ganzoo --help`` is printed
from the table. Plugins add commands through the ``register_commands`` hook (:mod:`ganzoo.hookspecs`). The
library modules never import this package.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
import warnings
from typing import TYPE_CHECKING

import torch

from .. import __version__
from ..errors import GanzooError, GanzooWarning, Stopped
from . import lazy
from .commands import COMMANDS, GROUPS

if TYPE_CHECKING:  # the edges, for readers and type checkers; at run time: _group() below
    from . import demo, eval, hub, latent, models, sample, train  # noqa: F401

EXIT_USER_ERROR = 2


# ---- parser ---------------------------------------------------------------------------------
class HelpFormatter(argparse.HelpFormatter):
    """Shows each option's default, as ArgumentDefaultsHelpFormatter does, where there is one to
    show: not for flags, options without a default (None), or help that already states it."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (not action.option_strings or default is None or default is False or default == argparse.SUPPRESS
                or "default" in text
                or "%(default)" in text or isinstance(action, (argparse._StoreTrueAction, argparse._VersionAction))):
            return text
        return f"{text} (default: %(default)s)"


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser with :class:`HelpFormatter` for itself and its sub-commands, and a usage
    error in one line (the command, the error, where the help is) with exit 2, like every other
    user error of ganzoo (argparse prints the whole usage block first)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        message = " ".join(str(message).split())
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _add_plugin_commands(sub) -> None:
    """Each plugin's ``register_commands(register)`` hook, ``register`` being the sub-parsers' ``add_parser``
    (``p = register(NAME, help=...)``, ``p.set_defaults(func=...)``): a plugin whose hook fails (a built-in
    command's name among them) is reported in one line and the command line goes on without its commands (as
    the other hooks' entries, they count only if the hook returns)."""
    for impl in lazy.plugins.plugin_manager().hook.register_commands.get_hookimpls():
        before = set(sub.choices)
        try:
            impl.function(register=sub.add_parser)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # a broken plugin must not take the command line down
            text = " ".join(str(exc).split()) or type(exc).__name__
            print(f"ganzoo: warning: plugin {impl.plugin_name!r} could not add its commands: {text}", file=sys.stderr)
            added = set(sub.choices) - before
            for name in added:  # argparse keeps a command in two places: the parsers and the help lines
                del sub.choices[name]
            sub._choices_actions[:] = [a for a in sub._choices_actions if a.dest not in added]


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def _group(name: str):
    """A command group's module of this package, imported when one of its commands is named."""
    return importlib.import_module(f"{__name__}.{name}")


def _parser(groups) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """The ``ganzoo`` parser with the commands of ``groups`` in full and every other built-in command as its
    help line (enough for ``ganzoo --help`` and for the error naming an unknown command)."""
    parser = ArgumentParser(prog="ganzoo", description="A zoo of GANs: list, train, sample, share.")
    parser.add_argument("--version", action="version", version=f"ganzoo {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    for group in groups:
        _group(group).add_parsers(sub)
    for name, (_, text) in COMMANDS.items():
        if name not in sub.choices:
            sub.add_parser(name, help=text)
    return parser, sub


def build_parser(*, plugin_commands: bool = True) -> argparse.ArgumentParser:
    """The whole ``ganzoo`` parser: every built-in command, and (``plugin_commands``) those plugins add."""
    parser, sub = _parser(GROUPS)
    if plugin_commands:
        _add_plugin_commands(sub)
    return parser


@contextlib.contextmanager
def _one_line_warnings(debug: bool):
    """ganzoo's own warnings (a skipped image, a recomputed cache file) as ``ganzoo: warning: ...``, one
    line each, without the source line Python's default format adds."""
    if debug:
        yield
        return
    old = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if not (isinstance(category, type) and issubclass(category, GanzooWarning)) and "ganzoo" not in str(filename):
            return old(message, category, filename, lineno, file, line)
        text = " ".join(str(message).split())
        print(f"ganzoo: warning: {text}", file=file or sys.stderr)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = old


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # only the named command's group is built; the plugins are loaded only for a command word that is not built
    # in (a plugin's command, or a typo whose error then lists every command): `ganzoo --help` and the built-in
    # commands start without importing them
    word = next((str(a) for a in argv if not str(a).startswith("-")), None)
    parser, sub = _parser([COMMANDS[word][0]] if word in COMMANDS else [])
    if word is not None and word not in COMMANDS:
        _add_plugin_commands(sub)
    args, extra = parser.parse_known_args(argv)
    if extra:  # name the sub-command's help, not the top level's, for an option that command lacks
        sub.choices.get(getattr(args, "command", None) or "", parser).error(
            f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USER_ERROR
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    try:
        with _one_line_warnings(args.debug):
            return int(args.func(args) or 0)
    except GanzooError as exc:
        if args.debug:
            raise
        stopped = isinstance(exc, Stopped)  # by SIGTERM/SIGINT, after saving: exits 143/130
        print(f"ganzoo: {'stopped' if stopped else 'error'}: {exc}", file=sys.stderr)
        return exc.exit_code if stopped else EXIT_USER_ERROR
    except (OSError, MemoryError) as exc:  # the disk or the machine said no: one line, not a traceback
        if args.debug:
            raise
        what = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        reason = getattr(exc, "strerror", None) or " ".join(str(exc).split()) or type(exc).__name__
        print(f"ganzoo: error: {what}{reason} ({type(exc).__name__}); nothing was finished: free the resource "
              f"or choose another path and retry (--debug shows where)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ganzoo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
