"""The README's usage block and `--help` say the same thing.

The oracle is the argparse parser itself (`cli.build_parser()`): every
command and every option `--help` shows must appear in README.md's usage
block (a command group whose options live in its own README, named in the
block, is checked against that README), and every option the block names
must exist, so neither can drift without this failing.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from musketeer import cli

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def usage_block() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Usage", 1)[1]
    found = re.search(r"```sh\n(.*?)```", section, re.S)
    assert found, "README.md's ## Usage section has no ```sh block"
    return found.group(1)


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> list[tuple[str, ...]]:
    """The options --help shows, each with its spellings (`-o`, `--output`)."""
    return [tuple(action.option_strings) for action in parser._actions
            if action.help != argparse.SUPPRESS and action.option_strings and action.option_strings != ["-h", "--help"]]


def commands() -> Iterator[tuple[list[str], argparse.ArgumentParser]]:
    """(command path, parser) for every leaf command, e.g. (['mpc', 'run'], p)."""
    def walk(path: list[str], parser: argparse.ArgumentParser) -> Iterator[tuple[list[str], argparse.ArgumentParser]]:
        subs = _subparsers(parser)
        if not subs:
            yield path, parser
        for name, sub in subs.items():
            yield from walk(path + [name], sub)
    yield from walk([], cli.build_parser())


def _mentions(text: str, token: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(token)}(?![\w-])", text) is not None


def segments(block: str) -> list[str]:
    """One entry per command shown: its line and its continuation lines."""
    out: list[str] = []
    for line in block.splitlines():
        if line.startswith("musketeer "):
            out.append(line)
        elif out and line.startswith(" "):
            out[-1] += "\n" + line
    return out


def where_documented(path: list[str], block: str) -> str | None:
    """The usage text for one command: its own segment(s); for a group
    shown as `musketeer mpc run|explain ... # every option: mpc/README.md`,
    that README. None when the block does not show the command."""
    own = [seg for seg in segments(block) if re.match(rf"musketeer {re.escape(' '.join(path))}(\s|$)", seg)]
    if own:
        return "\n".join(own)
    if len(path) > 1:
        for seg in segments(block):
            head = seg.split("#", 1)[0]
            if re.match(rf"musketeer {re.escape(path[0])} ", head) and path[1] in re.split(r"[ |]", head):
                doc = re.search(r"([\w/]+README\.md)", seg)
                return (ROOT / doc.group(1)).read_text(encoding="utf-8") if doc else seg
    return None


LEAVES = list(commands())


def test_every_top_level_option_is_in_the_usage_block() -> None:
    block = usage_block()
    for spellings in _options(cli.build_parser()):
        assert any(_mentions(block, o) for o in spellings), \
            f"`musketeer {spellings[-1]}` is in --help but not in README's usage block"


@pytest.mark.parametrize("path, parser", LEAVES, ids=[" ".join(p) for p, _ in LEAVES])
def test_every_command_and_option_is_in_the_usage_block(path: list[str], parser: argparse.ArgumentParser) -> None:
    text = where_documented(path, usage_block())
    assert text is not None, f"`musketeer {' '.join(path)}` is a command but README's usage block does not show it"
    for spellings in _options(parser):
        assert any(_mentions(text, o) for o in spellings), (
            f"`musketeer {' '.join(path)} {spellings[-1]}` is in --help but not on its line of README's usage block "
            "(or the README it points to)")


def test_the_usage_block_names_no_option_that_does_not_exist() -> None:
    known = {o for spellings in _options(cli.build_parser()) for o in spellings}
    for _, parser in LEAVES:
        for action in parser._actions:
            known.update(action.option_strings)
    for token in re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", usage_block()):
        assert token in known, f"README's usage block names {token}, which no command accepts"


def test_readme_names_every_built_in_backend() -> None:
    """The README's `--backend` paragraph names what `--backend` accepts."""
    from musketeer.backends import registry

    text = README.read_text(encoding="utf-8")
    paragraph = text[text.index("`--backend` is `auto`"):][:600]
    for name in registry.BUILTINS:  # third-party engines are whatever is installed
        assert f"`{name}`" in paragraph, f"backend {name} is registered but README's --backend paragraph omits it"
