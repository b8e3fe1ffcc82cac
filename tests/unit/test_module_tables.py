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
