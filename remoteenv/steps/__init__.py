"""Idempotent steps, one module per domain, and the registry playbooks look step types up in.

A step module registers its classes with `@register("name")`; this package imports every module
of STEP_MODULES, so adding one is: write `remoteenv/steps/<domain>.py` and list it there.
"""

from __future__ import annotations

from importlib import import_module

from remoteenv.steps.base import (
    CHANGED,
    FAILED,
    OK,
    SKIPPED,
    STEP_TYPES,
    Change,
    Param,
    Result,
    Step,
    StepContext,
    register,
)

# The modules that define steps, each registering its classes with @register: an explicit table
# (as the CLI's), so a module that is listed and missing is an import error, never a step type
# silently gone.
STEP_MODULES = ("shell", "upload", "facts", "conda", "env", "jupyter")

for _name in STEP_MODULES:
    import_module(f"remoteenv.steps.{_name}")


def known_types() -> list[str]:
    return sorted(STEP_TYPES)


__all__ = [
    "CHANGED", "FAILED", "OK", "SKIPPED", "STEP_TYPES",
    "Change", "Param", "Result", "Step", "StepContext", "known_types", "register",
]
