"""The explicit tables of step and command modules are complete, and nothing in them is missing."""

from __future__ import annotations

from pathlib import Path

import remoteenv

PACKAGE = Path(remoteenv.__file__).parent


def modules_that(folder: str, marker: str) -> set[str]:
    return {p.stem for p in (PACKAGE / folder).glob("*.py")
            if p.stem != "__init__" and marker in p.read_text(encoding="utf-8")}


def test_every_step_module_is_listed_and_every_listed_one_exists():
    from remoteenv.steps import STEP_MODULES

    assert set(STEP_MODULES) == modules_that("steps", "@register(")
    assert all((PACKAGE / "steps" / f"{name}.py").is_file() for name in STEP_MODULES)


def test_every_command_module_is_listed_and_every_listed_one_exists():
    from remoteenv.cli.app import COMMAND_MODULES

    assert set(COMMAND_MODULES) == modules_that("cli", "def register(app")
    assert all((PACKAGE / "cli" / f"{name}.py").is_file() for name in COMMAND_MODULES)


def test_the_command_table_names_what_each_module_registers():
    """A run registers only its command's module: the table must say which module that is."""
    from importlib import import_module

    import typer

    from remoteenv.cli.app import COMMAND_MODULES, COMMANDS

    registered: dict[str, str] = {}
    for module in COMMAND_MODULES:
        app = typer.Typer()
        import_module(f"remoteenv.cli.{module}").register(app)
        names = [c.name for c in app.registered_commands] + [
            g.name or g.typer_instance.info.name for g in app.registered_groups]
        for name in names:
            assert name not in registered, f"{name} registered by {registered.get(name)} and {module}"
            registered[name] = module
    assert registered == COMMANDS


def test_a_run_finds_its_command_after_the_global_options():
    from remoteenv.cli.app import command_of

    assert command_of(["-i", "hosts.yaml", "-v", "apply", "x"]) == "apply"
    assert command_of(["--inventory", "probe", "probe", "h"]) == "probe"
    assert command_of(["--no-reuse", "tunnels"]) == "tunnels"
    assert command_of(["--help"]) is None and command_of([]) is None and command_of(["nosuch"]) is None
