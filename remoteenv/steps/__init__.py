"""Idempotent steps, one module per domain, and the registry playbooks look step types up in.

A step module registers its classes with `@register("name")`; this package imports every known
step module, so adding one is: write `remoteenv/steps/<domain>.py` and list it in `_MODULES`.
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

# Modules that define steps; a module not present (yet) is skipped.
_MODULES = ("shell", "upload", "facts", "conda", "env", "kernel", "jupyter")

for _name in _MODULES:
    try:
        import_module(f"remoteenv.steps.{_name}")
    except ModuleNotFoundError as _exc:
        if _exc.name != f"remoteenv.steps.{_name}":
            raise


def known_types() -> list[str]:
    return sorted(STEP_TYPES)


__all__ = [
    "CHANGED", "FAILED", "OK", "SKIPPED", "STEP_TYPES",
    "Change", "Param", "Result", "Step", "StepContext", "known_types", "register",
]
