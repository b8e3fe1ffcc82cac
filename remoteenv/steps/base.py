"""What every step is: parameters, check (facts only) -> Change, apply (one round trip) -> Result.

A step instance belongs to one host: its string parameters have that host's variables rendered in.
The runner asks every step's `queries()` in the host's single probe round trip, then for each step
calls `check(facts)`; when that returns a Change (or an earlier step changed the host and this
step `rechecks_after_change`), it calls `apply(conn, facts, io)`, where `io` (steps/io.py) takes
the output as it comes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from remoteenv import remotepath
from remoteenv.errors import ConfigError
from remoteenv.status import Status

if TYPE_CHECKING:
    from remoteenv.facts import HostFacts, Query
    from remoteenv.steps.io import StepIO
    from remoteenv.transport import Connection

OK = Status.OK
CHANGED = Status.CHANGED
FAILED = Status.FAILED
SKIPPED = Status.SKIPPED
STATUSES = (OK, CHANGED, FAILED, SKIPPED)  # what apply may return


@dataclass(frozen=True)
class Param:
    """One parameter a step takes.

    `kind`: str, bool, int, float, list (of text) or dict (text keys, text values). `template`:
    `{{ var }}` placeholders are rendered in it (in each item of a list or value of a dict).
    `shell`: a shell runs its text as code, so a placeholder without `| quote` is warned about.
    `as_written`: the value reaches the step's `validate` as YAML gave it (the step judges it).
    """

    name: str
    kind: type = str
    required: bool = False
    default: Any = None
    doc: str = ""
    template: bool = True
    shell: bool = False
    as_written: bool = False


@dataclass
class Change:
    """What apply would do, and why the host is not already as wanted."""

    summary: str
    reason: str = ""
    diff: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"summary": self.summary, "reason": self.reason, "diff": self.diff}


@dataclass
class Result:
    """What apply did. `output` is the full captured output; reports keep its last lines."""

    status: str
    message: str = ""
    output: str = ""
    duration: float = 0.0
    facts: HostFacts | None = None  # set by steps that re-gather facts
    # Typed results for reports and events (a port, a prefix, a stamp): JSON-ready values only.
    data: dict[str, Any] = field(default_factory=dict)
    # What the caller needs and nobody may read (a Jupyter token): kept in memory only, never written
    # to reports, events or logs.
    secrets: dict[str, str] = field(default_factory=dict, repr=False)

    def tail(self, lines: int = 10) -> list[str]:
        return output_tail(self.output, lines)


def output_tail(output: str, lines: int = 10) -> list[str]:
    return output.rstrip("\n").splitlines()[-lines:] if output.strip() else []


@dataclass
class StepContext:
    """Where a step came from and the variables it was rendered with."""

    variables: dict[str, Any] | None = None  # None: parameters kept unrendered (export)
    base_dir: Path = field(default_factory=Path.cwd)  # the playbook's folder, for local files
    where: str = ""  # "file:line" of the step
    param_lines: dict[str, str] = field(default_factory=dict)  # param -> "file:line"

    def where_param(self, name: str) -> str:
        return self.param_lines.get(name, self.where)


class Step:
    """Base of all steps. Subclasses set PARAMS, document them with a YAML example, register."""

    type_name: ClassVar[str] = ""
    PARAMS: ClassVar[tuple[Param, ...]] = ()
    # The parameter a bare string fills (`- shell: make` means command: make).
    SHORTHAND: ClassVar[str | None] = None
    # When an earlier step changed the host since facts were gathered, apply this step even if its
    # check saw nothing to do: apply re-evaluates its guards on the host, so it is safe.
    rechecks_after_change: ClassVar[bool] = False

    def __init__(self, params: dict[str, Any], *, name: str | None = None, timeout: float | None = None,
                 ctx: StepContext | None = None) -> None:
        self.params = {p.name: params.get(p.name, p.default) for p in self.PARAMS}
        self.name = name
        self.timeout = timeout
        self.ctx = ctx or StepContext()

    # -- the contract -------------------------------------------------------------------------
    def queries(self) -> list[Query]:
        return []

    def check(self, facts: HostFacts) -> Change | None:
        raise NotImplementedError

    def apply(self, conn: Connection, facts: HostFacts, io: StepIO) -> Result:
        """Do the work; write what the host prints to `io` as it comes (conn.run's on_output=io.write)."""
        raise NotImplementedError

    def describe(self) -> str:
        return self.name or self.type_name

    # -- optional hooks -----------------------------------------------------------------------
    def see_later_steps(self, later: list[Step]) -> None:
        """Told the steps that come after this one on the host (a facts step asks their questions)."""

    def use_env(self, env: Any) -> None:
        """Told of an earlier env step (its `env_name` and `path`, read when needed: they come from its
        file), for a step that uses the environment it makes (a jupyter step runs from it)."""

    def prepare(self) -> None:
        """Read local inputs (files, templates); raise ConfigError before any host is touched."""

    def noop_reason(self, facts: HostFacts) -> str:
        """Why check found nothing to do, for plans and reports."""
        return "already as wanted"

    def noop_result(self, facts: HostFacts) -> Result:
        """The result of a step that check found nothing to do for: what is there (a port) in data."""
        return Result(OK, message=self.noop_reason(facts))

    def to_ansible(self, index: int = 0) -> list[dict[str, Any]]:
        """Equivalent ansible.builtin task(s); `index` makes registered names unique."""
        raise NotImplementedError

    @classmethod
    def validate(cls, params: dict[str, Any], where: str) -> None:
        """Checks across parameters (beyond names and types), with `where` = "file:line"."""

    # -- helpers for subclasses ---------------------------------------------------------------
    def ansible_common(self) -> dict[str, Any]:
        task: dict[str, Any] = {"name": self.describe()}
        if self.timeout:
            task["timeout"] = int(self.timeout)
        return task


def json_answer(facts: HostFacts, query: Query) -> dict[str, Any] | None:
    """A `read` question's answer as a JSON object (a stamp a step wrote), or None."""
    import json

    text = facts.answer(query)
    try:
        data = json.loads(text.text) if text is not None else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def script_error(output: str) -> tuple[str | None, str | None]:
    """(stage, why) from the `remoteenv-error<TAB>STAGE<TAB>why` line a remote script ends a failure with."""
    for line in reversed(output.splitlines()):
        if line.startswith("remoteenv-error\t"):
            _, stage, why = [*line.split("\t", 2), "", ""][:3]
            return stage, why
    return None, None


# Remote paths follow remotepath's one rule; these names are what step modules import.
remote_path = remotepath.under_home
sh_path = remotepath.sh_word


def mode_text(value: Any, where: str) -> str:
    """A file mode as the playbook must write it: an octal string such as "0644"."""
    if isinstance(value, int) and not isinstance(value, bool):
        raise ConfigError(f"{where}: mode must be a quoted octal string like \"0644\" (YAML read {value})",
                          "quote it: mode: \"0644\"")
    text = str(value)
    try:
        number = int(text, 8)
    except ValueError:
        raise ConfigError(f"{where}: mode {text!r} is not an octal number", "write it like \"0644\"") from None
    if not 0 <= number <= 0o7777:
        raise ConfigError(f"{where}: mode {text!r} is out of range", "write it like \"0644\"")
    return text


class _Registry(dict):
    """Step type name (the key a playbook writes) -> class, filled by @register as each step module
    is imported: on first use of its name, so a playbook of shell steps never loads conda's module."""

    modules: tuple[str, ...] = ()  # remoteenv.steps.STEP_MODULES: each module is its step type's name

    def __missing__(self, name: str) -> type[Step]:
        if name not in self.modules:
            raise KeyError(name)
        from importlib import import_module

        import_module(f"remoteenv.steps.{name}")
        return dict.__getitem__(self, name)

    def __contains__(self, name: object) -> bool:
        return name in self.modules or dict.__contains__(self, name)

    def _all(self) -> None:
        for name in self.modules:
            self[name]

    def __iter__(self):  # listing every type loads every module
        self._all()
        return dict.__iter__(self)

    def __len__(self) -> int:
        self._all()
        return dict.__len__(self)

    def keys(self):  # type: ignore[override]
        self._all()
        return dict.keys(self)

    def values(self):  # type: ignore[override]
        self._all()
        return dict.values(self)

    def items(self):  # type: ignore[override]
        self._all()
        return dict.items(self)


STEP_TYPES: _Registry = _Registry()


def register(name: str):
    """Class decorator: make a Step subclass available to playbooks as `name`."""

    def decorate(cls: type[Step]) -> type[Step]:
        if dict.__contains__(STEP_TYPES, name) and STEP_TYPES[name] is not cls:
            raise ValueError(f"step type '{name}' is registered twice")
        cls.type_name = name
        STEP_TYPES[name] = cls
        return cls

    return decorate
