"""A plugin adds a sub-command to `ganzoo` through the register_commands hook (ganzoo.hookspecs), as simonw/llm's
plugins do; the built-in commands and `ganzoo --help` start without loading the plugins."""
from __future__ import annotations

import pytest

import ganzoo
from ganzoo import plugins
from ganzoo.cli import build_parser, main
from ganzoo.errors import GanzooError


class Hello:
    """A plugin with one command: `ganzoo hello NAME [--shout]`."""

    def __init__(self) -> None:
        self.calls = 0

    @ganzoo.hookimpl
    def register_commands(self, register):
        self.calls += 1
        p = register("hello", help="greet NAME")
        p.add_argument("name", help="who to greet")
        p.add_argument("--shout", action="store_true", help="in capitals")
        p.set_defaults(func=self.run)

    @staticmethod
    def run(args) -> int:
        if args.name == "nobody":
            raise GanzooError("hello: give a name, e.g. `ganzoo hello world`")
        text = f"hello, {args.name}"
        print(text.upper() if args.shout else text)
        return 0


class Broken:
    """A plugin whose hook adds a command and then fails: the command is dropped with the failure."""

    @ganzoo.hookimpl
    def register_commands(self, register):
        register("half", help="added before the failure")
        raise RuntimeError("no\nconfig")


class Clash:
    """A plugin whose command takes a built-in command's name."""

    @ganzoo.hookimpl
    def register_commands(self, register):
        register("train", help="not ganzoo's train")


@pytest.fixture
def hello():
    plugin = Hello()
    plugins.register_plugin(plugin, name="hello-tests")
    yield plugin
    plugins.unregister_plugin("hello-tests")


def test_a_plugin_command_runs_with_its_options(hello, capsys):
    assert main(["hello", "world", "--shout"]) == 0
    assert capsys.readouterr().out == "HELLO, WORLD\n"
    assert "greet NAME" in build_parser().format_help()  # build_parser() adds the plugins' commands


def test_a_plugin_commands_error_is_one_line_and_exit_2(hello, capsys):
    assert main(["hello", "nobody"]) == 2
    assert capsys.readouterr().err == "ganzoo: error: hello: give a name, e.g. `ganzoo hello world`\n"


def test_a_plugin_commands_help_and_usage_error(hello, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["hello", "--help"])
    assert exc.value.code == 0 and "who to greet" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["hello"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.startswith("ganzoo hello: error: the following arguments are required: name")


def test_builtin_commands_and_the_top_help_do_not_load_plugin_commands(hello, capsys):
    assert main(["plugins", "--json"]) == 0
    with pytest.raises(SystemExit):
        main(["--help"])
    assert hello.calls == 0
    assert main(["--debug", "hello", "x"]) == 0 and hello.calls == 1


def test_a_plugin_that_takes_a_builtin_name_is_skipped_with_a_warning(hello, capsys):
    plugins.register_plugin(Clash(), name="clash-tests")
    try:
        assert main(["hello", "world"]) == 0
        captured = capsys.readouterr()
        assert captured.out == "hello, world\n"
        assert "ganzoo: warning: plugin 'clash-tests' could not add its commands: " in captured.err
        assert "conflicting subparser: train" in captured.err
    finally:
        plugins.unregister_plugin("clash-tests")


def test_a_failing_hook_is_one_warning_and_adds_no_command(hello, capsys):
    plugins.register_plugin(Broken(), name="broken-tests")
    try:
        with pytest.raises(SystemExit) as exc:
            main(["half"])
        captured = capsys.readouterr()
        assert exc.value.code == 2 and "invalid choice: 'half'" in captured.err
        assert "ganzoo: warning: plugin 'broken-tests' could not add its commands: no config\n" in captured.err
        assert "added before the failure" not in build_parser().format_help()
        assert main(["hello", "world"]) == 0
    finally:
        plugins.unregister_plugin("broken-tests")


def test_an_unknown_command_lists_the_plugin_commands_too(hello, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["helo"])
    assert exc.value.code == 2 and "'hello'" in capsys.readouterr().err
