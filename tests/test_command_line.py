"""The `edge` command as a user meets it: every option explained in --help, one JSON style,
clean failures with documented exit statuses (docs/cli.md), and the sources `edge run` takes."""

from __future__ import annotations

import argparse

from edge import cli


def _parsers(parser: argparse.ArgumentParser, path: str = "edge"):
    """(command path, parser) for `edge` and every (nested) subcommand."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                assert helps.get(name), f"`{path} {name}` has no help line in `{path} --help`"
                yield from _parsers(sub, f"{path} {name}")


def test_every_option_and_argument_is_explained_in_help():
    blank = []
    seen = 0
    for path, parser in _parsers(cli.build_parser()):
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            seen += 1
            if not action.help or action.help == argparse.SUPPRESS or not action.help.strip():
                blank.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    assert seen > 100  # every command, every option
    assert not blank, "options without a help text: " + ", ".join(blank)
