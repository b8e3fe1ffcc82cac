"""Command help as the terminal's width wants it.

Typer's rich mode keeps a docstring's single line breaks: prose wrapped at 100 columns in the source
comes out ragged in an 80-column terminal. So each prose paragraph becomes one line, which rich then
wraps at the terminal's width. A paragraph with indented or list lines (examples, tables) keeps its
line breaks, as does anything after a line holding only \\f (Typer drops it). Indented lines are set
in bold: the markup also keeps their indent, which Typer's dedent of the text after the first
paragraph would take away when they are all that follows a heading ("Examples:").
"""

from __future__ import annotations

import inspect

TYPE_CHECKING = False
if TYPE_CHECKING:
    import typer


def reflow(text: str | None) -> str | None:
    if not text:
        return text
    body, cut, rest = inspect.cleandoc(text).partition("\f")
    paragraphs = []
    for paragraph in body.split("\n\n"):
        lines = paragraph.split("\n")
        if any(line.startswith((" ", "\t", "- ", "* ", "\b")) for line in lines):
            paragraphs.append("\n".join(f"[bold]{line}[/bold]" if line[:1].isspace() else line for line in lines))
        else:
            paragraphs.append(" ".join(line.strip() for line in lines))
    return "\n\n".join(paragraphs) + cut + rest


def reflow_app(app: typer.Typer) -> None:
    """Every command's and group's help in `app`, reflowed in place (Typer reads them later)."""
    for command in app.registered_commands:
        command.help = reflow(command.help or inspect.getdoc(command.callback))
    for group in app.registered_groups:
        if isinstance(group.help, str):
            group.help = reflow(group.help)
        sub = group.typer_instance
        if sub is not None:
            if isinstance(sub.info.help, str):
                sub.info.help = reflow(sub.info.help)
            reflow_app(sub)
