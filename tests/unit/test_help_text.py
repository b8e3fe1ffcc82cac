"""Every command's --help reads well in an 80-column terminal: prose paragraphs are filled to the
width, not broken where the source's lines were; examples keep their lines."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from remoteenv.cli.helptext import reflow

WIDTH = 80


def command_paths() -> list[list[str]]:
    from typer.main import get_command

    from remoteenv.cli.app import make_app

    found: list[list[str]] = []

    def walk(command, path: list[str]) -> None:
        found.append(path)
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            walk(sub, [*path, name])

    walk(get_command(make_app()), [])
    return found


def help_of(path: list[str]) -> str:
    env = {**os.environ, "COLUMNS": str(WIDTH), "TERM": "dumb"}
    proc = subprocess.run([sys.executable, "-m", "remoteenv", *path, "--help"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "remoteenv")
def test_prose_in_help_is_filled_to_the_terminal(path):
    text = help_of(path)
    description = text.split("╭", 1)[0].splitlines()
    paragraph: list[str] = []
    for line in [*description, ""]:
        if line.strip() and not line.startswith("   "):  # prose; examples are indented
            paragraph.append(line.rstrip())
            continue
        # Every line of a paragraph but its last is filled: rich breaks only where the next word
        # does not fit, so a short line there is a line break from the source.
        ragged = [ln for ln in paragraph[:-1] if len(ln) < WIDTH - 25]
        assert not ragged, f"{' '.join(path)} --help: ragged lines {ragged} in:\n" + "\n".join(paragraph)
        paragraph = []
    assert all(len(line) <= WIDTH for line in text.splitlines())


def test_reflow_joins_prose_and_keeps_examples_lists_and_what_follows_a_form_feed():
    text = """First line.

    A paragraph wrapped
    in the source.

    Examples:
      remoteenv up gpu-box
      remoteenv up --group lab

    - one
    - two
    \f
    kept
    as is"""
    assert reflow(text) == ("First line.\n\nA paragraph wrapped in the source.\n\n"
                            "Examples:\n[bold]  remoteenv up gpu-box[/bold]\n[bold]  remoteenv up --group lab[/bold]"
                            "\n\n- one\n- two\n\f\nkept\nas is")
