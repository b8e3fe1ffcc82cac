"""Idempotent steps, one module per domain, and the registry playbooks look step types up in.

A step module registers its class with `@register("name")`, the module's own name; the registry
imports a module when its step type is first asked for, so adding one is: write
`remoteenv/steps/<domain>.py` and list it in STEP_MODULES.
"""

from __future__ import annotations

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

STEP_TYPES.modules = STEP_MODULES


def known_types() -> list[str]:
    return sorted(STEP_MODULES)


__all__ = [
    "CHANGED", "FAILED", "OK", "SKIPPED", "STEP_TYPES",
    "Change", "Param", "Result", "Step", "StepContext", "known_types", "register",
]
