"""Playbooks: YAML files listing the steps that make a host as wanted, in order.

    name: workstation                 # optional; default: the file's name
    description: A ready workstation  # optional
    vars:                             # optional: defaults for {{ placeholders }}
      work_dir: work
    steps:
      - name: work folder             # optional: how plans and progress show the step
        timeout: 30                   # optional: seconds before the step is stopped
        shell:                        # exactly one step type, holding its parameters
          command: mkdir -p ~/{{ work_dir | quote }}
          creates: ~/{{ work_dir }}

Step types and their parameters: `remoteenv.steps` (each class's docstring has an example).

Variables are written `{{ name }}` (or `{{ name | quote }}` for a shell word), as in Ansible.
Variable precedence, lowest first (a later source overrides an earlier one):

  1. built-in: `inventory_hostname` (the host's name as selected)
  2. the playbook's `vars:`
  3. the inventory's `defaults: vars:`
  4. the host's groups' `vars:`
  5. the host's own `vars:`
  6. `--var name=value` on the command line

A placeholder naming no variable is a ConfigError naming the file and line, raised before any
host is touched.

Finding a playbook: a path to a file is used as given. A bare name (`workstation`,
`examples/hello`) is looked up as `<name>.yaml` (or `.yml`) in the shipped playbooks folder
(installed: `remoteenv/playbooks` inside the package; in a source tree: `playbooks/` at its top),
then in the current folder and its `playbooks/` subfolder.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import remoteenv
from remoteenv import yamlio
from remoteenv.errors import ConfigError
from remoteenv.inventory.model import Host
from remoteenv.steps import STEP_TYPES, Step, StepContext, known_types, templating
from remoteenv.steps.base import Param

TOP_KEYS = ("name", "description", "vars", "steps")
COMMON_KEYS = ("name", "timeout")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0", ""}


@dataclass
class StepSpec:
    """A step as the playbook wrote it: validated, not yet rendered for a host."""

    index: int
    type: str
    params: dict[str, Any]
    name: str | None = None
    timeout: float | str | None = None
    where: str = ""  # "file:line" of the step's entry
    param_lines: dict[str, str] = field(default_factory=dict)

    @property
    def cls(self) -> type[Step]:
        return STEP_TYPES[self.type]


@dataclass(frozen=True)
class LoadWarning:
    """Something in a playbook that loads, but is likely a mistake; the CLI shows each one."""

    where: str  # "file:line"
    message: str
    hint: str = ""

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class Playbook:
    name: str
    steps: list[StepSpec]
    description: str = ""
    vars: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    warnings: list[LoadWarning] = field(default_factory=list)

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    @property
    def source(self) -> str:
        return str(self.path) if self.path else self.name

    def variables_for(self, host: Host | None = None, extra_vars: Mapping[str, Any] | None = None
                      ) -> dict[str, Any]:
        """The variables a host's steps are rendered with, in the documented precedence."""
        variables: dict[str, Any] = {"inventory_hostname": host.name if host else ""}
        variables.update(self.vars)
        if host is not None:
            variables.update(host.vars)
        variables.update(extra_vars or {})
        return variables

    def build(self, variables: Mapping[str, Any] | None) -> list[Step]:
        """The steps for one host. `variables=None` keeps placeholders as written (for export)."""
        steps = [_build_step(spec, variables, self.base_dir) for spec in self.steps]
        for i, step in enumerate(steps):
            step.see_later_steps(steps[i + 1:])
        return steps

    def build_for(self, host: Host | None, extra_vars: Mapping[str, Any] | None = None) -> list[Step]:
        return self.build(self.variables_for(host, extra_vars))


# -- loading ----------------------------------------------------------------------------------
def shipped_dir() -> Path:
    """Installed: remoteenv/playbooks inside the package; from a source tree: playbooks/ at its top."""
    package = Path(remoteenv.__file__).resolve().parent
    installed = package / "playbooks"
    return installed if installed.is_dir() else package.parent / "playbooks"


def shipped_names() -> list[str]:
    folder = shipped_dir()
    if not folder.is_dir():
        return []
    return sorted(str(p.relative_to(folder).with_suffix("")) for p in folder.rglob("*.y*ml"))


def find_playbook(ref: str | os.PathLike) -> Path:
    path = Path(ref).expanduser()
    if path.is_file():
        return path
    text = str(ref)
    if not text.endswith((".yaml", ".yml")):
        for folder in (shipped_dir(), Path.cwd(), Path.cwd() / "playbooks"):
            for suffix in (".yaml", ".yml"):
                candidate = folder / f"{text}{suffix}"
                if candidate.is_file():
                    return candidate
    shipped = ", ".join(shipped_names()) or "none found"
    raise ConfigError(f"no playbook '{text}'", f"give a path to a .yaml file, or a shipped name ({shipped})")


def load_playbook(ref: str | os.PathLike) -> Playbook:
    """A playbook by path or shipped name, validated (errors name file, line and key)."""
    path = find_playbook(ref)
    return parse(yamlio.load_file(path, "playbook"), path)


def load_text(text: str, source: str = "<playbook>", path: Path | None = None) -> Playbook:
    return parse(yamlio.load_text(text, source), path, source)


def parse(data: Any, path: Path | None, source: str | None = None) -> Playbook:
    src = source or str(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{src}:1: a playbook must be a mapping with 'steps:'",
                          "see playbooks/examples/hello.yaml")
    for key in data:
        if key not in TOP_KEYS:
            _fail(src, data, key, f"unknown key '{key}' in the playbook", f"known keys: {', '.join(TOP_KEYS)}")
    name = data.get("name") or (path.stem if path else "playbook")
    if not isinstance(name, str):
        _fail(src, data, "name", "name must be text")
    description = data.get("description") or ""
    if not isinstance(description, str):
        _fail(src, data, "description", "description must be text")
    variables = data.get("vars") or {}
    if not isinstance(variables, dict):
        _fail(src, data, "vars", "vars must be a mapping of names to values")
    for var in variables:
        if not isinstance(var, str) or not var.isidentifier():
            _fail(src, variables, var, f"variable name {var!r} is not a valid name",
                  "use letters, digits and _, not starting with a digit")
    steps = data.get("steps")
    if "steps" not in data or steps is None:
        raise ConfigError(f"{src}:{getattr(data, 'line', 1) or 1}: the playbook has no 'steps:'",
                          "add steps: with a list of steps")
    if not isinstance(steps, list):
        _fail(src, data, "steps", "steps must be a list (each item starting with '- ')")
    specs = [_parse_step(src, steps, i) for i in range(len(steps))]
    return Playbook(name=name, steps=specs, description=description, vars=dict(variables), path=path,
                    warnings=[w for spec in specs for w in _shell_warnings(spec)])


def _shell_warnings(spec: StepSpec) -> list[LoadWarning]:
    """A `{{ var }}` without `| quote` in text a shell runs: the value would be shell code.

    Guards (`unless`, `only_if`) run on the host during `plan` too, so there it matters as much.
    """
    warnings = []
    for key in [p.name for p in spec.cls.PARAMS if p.shell]:
        value = spec.params.get(key)
        if not isinstance(value, str):
            continue
        for name in templating.unquoted_names(value):
            warnings.append(LoadWarning(
                spec.param_lines.get(key, spec.where),
                f"{{{{ {name} }}}} in {spec.type}.{key} is not quoted: its value would run as shell code",
                f"write {{{{ {name} | quote }}}}, unless the value is meant to be shell code"))
    return warnings


def _fail(src: str, container: Any, key: Any, problem: str, hint: str | None = None) -> None:
    raise ConfigError(f"{yamlio.where(src, container, key)}: {problem}", hint)


def _parse_step(src: str, steps: list, index: int) -> StepSpec:
    item = steps[index]
    number = index + 1
    if not isinstance(item, dict):
        _fail(src, steps, index, f"step {number} must be a mapping like '- shell: {{command: ...}}'",
              f"step types: {', '.join(known_types())}")
    here = yamlio.where(src, steps, index)
    type_keys = [k for k in item if k not in COMMON_KEYS]
    unknown = [k for k in type_keys if k not in STEP_TYPES]
    if unknown:
        _fail(src, item, unknown[0], f"unknown step type '{unknown[0]}'",
              f"known step types: {', '.join(known_types())}")
    if not type_keys:
        raise ConfigError(f"{here}: step {number} names no step type",
                          f"add one of: {', '.join(known_types())}")
    if len(type_keys) > 1:
        _fail(src, item, type_keys[1], f"step {number} has two step types ({type_keys[0]}, {type_keys[1]})",
              "each step has exactly one; split it into two steps")
    kind = type_keys[0]
    cls = STEP_TYPES[kind]
    raw = item[kind]
    if raw is None:
        raw = {}
    elif isinstance(raw, str) and cls.SHORTHAND:
        raw = {cls.SHORTHAND: raw}
    elif not isinstance(raw, dict):
        _fail(src, item, kind, f"the parameters of {kind} must be a mapping",
              f"parameters: {', '.join(p.name for p in cls.PARAMS) or 'none'}")
    declared = {p.name: p for p in cls.PARAMS}
    param_lines = {str(k): yamlio.where(src, raw, k) for k in raw} if isinstance(raw, yamlio.LineDict) else {}
    for key in raw:
        if key not in declared:
            _fail(src, raw, key, f"unknown parameter '{key}' for {kind}",
                  f"{kind} parameters: {', '.join(declared) or 'none'}")
    for p in cls.PARAMS:
        if p.required and raw.get(p.name) is None:
            raise ConfigError(f"{yamlio.where(src, item, kind)}: {kind} needs '{p.name}'",
                              f"add {p.name}: ({p.doc})" if p.doc else f"add {p.name}:")
    params: dict[str, Any] = {}
    for key, value in raw.items():
        if value is not None:
            params[key] = _check_type(declared[key], value, param_lines.get(key, here), kind)
    step_where = yamlio.where(src, item, kind)
    cls.validate(params, step_where)

    name = item.get("name")
    if name is not None and not isinstance(name, str):
        _fail(src, item, "name", "a step's name must be text")
    timeout = item.get("timeout")
    if timeout is not None:
        timeout = _check_type(Param("timeout", kind=float), timeout, yamlio.where(src, item, "timeout"), "step")
    return StepSpec(index=index, type=kind, params=params, name=name, timeout=timeout,
                    where=step_where, param_lines=param_lines)


def _check_type(param: Param, value: Any, where: str, kind: str) -> Any:
    """Static check of one value; a string with a placeholder is checked once rendered."""
    if param.as_written:
        return value
    if isinstance(value, str) and param.template and templating.has_placeholder(value):
        return value
    want = param.kind
    if want is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: {kind} {param.name} must be a list (items starting with '- '), "
                              f"not {yamlio.kind_of(value)}", f"{param.name}: [a, b]")
        return [_scalar(item, f"{where}", f"{kind} {param.name} item") for item in value]
    if want is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {kind} {param.name} must be a mapping of names to values, "
                              f"not {yamlio.kind_of(value)}", f"{param.name}: {{NAME: value}}")
        return {_scalar(key, where, f"{kind} {param.name} key"): _scalar(item, where, f"{kind} {param.name}.{key}")
                for key, item in value.items()}
    if want is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: {kind} {param.name} must be true or false, not {value!r}")
    if want in (int, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            return value
        raise ConfigError(f"{where}: {kind} {param.name} must be a number of seconds, not {value!r}")
    return _scalar(value, where, f"{kind} {param.name}")


def _scalar(value: Any, where: str, what: str) -> str:
    """A text value (numbers are taken as written); lists, mappings and booleans are refused."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(f"{where}: {what} must be text, not {yamlio.kind_of(value)}", "quote the value")
    return value if isinstance(value, str) else str(value)


def _coerce(param: Param, value: Any, where: str, kind: str) -> Any:
    """A rendered value into the parameter's type."""
    if not isinstance(value, str) or param.kind is str:
        return value
    text = value.strip()
    if param.kind is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ConfigError(f"{where}: {kind} {param.name} must be true or false, not {value!r}")
    try:
        number = float(text)
    except ValueError:
        raise ConfigError(f"{where}: {kind} {param.name} must be a number, not {value!r}") from None
    if number < 0:
        raise ConfigError(f"{where}: {kind} {param.name} must not be negative")
    return number


def _render(param: Param, value: Any, variables: Mapping[str, Any], where: str, kind: str) -> Any:
    """A value with this host's variables rendered in: text, each item of a list, each value of a dict."""
    what = f"{kind}.{param.name}"
    if isinstance(value, list):
        return [templating.render(item, variables, where, what) for item in value]
    if isinstance(value, dict):
        return {key: templating.render(item, variables, where, f"{what}.{key}") for key, item in value.items()}
    if isinstance(value, str):
        return _coerce(param, templating.render(value, variables, where, what), where, kind)
    return value


def _build_step(spec: StepSpec, variables: Mapping[str, Any] | None, base_dir: Path) -> Step:
    cls = spec.cls
    declared = {p.name: p for p in cls.PARAMS}
    params: dict[str, Any] = {}
    for key, value in spec.params.items():
        param = declared[key]
        where = spec.param_lines.get(key, spec.where)
        if variables is not None and param.template:
            value = _render(param, value, variables, where, spec.type)
        params[key] = value
    name, timeout = spec.name, spec.timeout
    if variables is not None:
        if name:
            name = templating.render(name, variables, spec.where, "the step's name")
        if isinstance(timeout, str):
            rendered = templating.render(timeout, variables, spec.where, "timeout")
            timeout = _coerce(Param("timeout", kind=float), rendered, spec.where, spec.type)
    ctx = StepContext(variables=dict(variables) if variables is not None else None, base_dir=base_dir,
                      where=spec.where, param_lines=dict(spec.param_lines))
    step = cls(params, name=name, timeout=float(timeout) if timeout is not None else None, ctx=ctx)
    if variables is not None:
        step.prepare()
    return step
