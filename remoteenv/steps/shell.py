"""The `shell` step: run a command, guarded like Ansible's `creates:` / `removes:` / `unless:` / `only_if:`."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from remoteenv.errors import ConfigError
from remoteenv.facts import Query
from remoteenv.scripts import script
from remoteenv.steps.base import (
    CHANGED,
    FAILED,
    OK,
    Change,
    Param,
    Result,
    Step,
    register,
    remote_path,
    sh_path,
)
from remoteenv.transport.scripted import short_command

if TYPE_CHECKING:
    from remoteenv.facts import HostFacts
    from remoteenv.steps.io import StepIO
    from remoteenv.transport import Connection

SKIP_MARKER = "remoteenv-skip\t"


def _script() -> str:
    return script("shell_step.sh")


@register("shell")
class Shell(Step):
    """Run a command on the host with /bin/sh, in the home folder (or `chdir`).

    Without a guard the command runs on every apply (and is reported changed). With guards it runs
    only when the host needs it; the guards are asked in the probe round trip for plans, and asked
    again on the host just before the command runs.

    Parameters:
      command   the shell command (required); a bare string value means this
      creates   a path: skip when it exists (relative paths are under chdir, else the home folder)
      removes   a path: skip when it does not exist
      unless    a read-only command: skip when it exits 0
      only_if   a read-only command: run only when it exits 0
      chdir     the folder to run in (default: the home folder)
      env       environment variables for the command (a mapping; values never show in argv)
      timeout   seconds before the command is stopped and the step fails

    Example:

        steps:
          - name: clone the project
            shell:
              command: git clone --depth 1 https://example.org/project.git project
              chdir: ~/work
              creates: project/.git
          - name: warm the cache
            shell:
              command: ./warm.sh
              chdir: ~/work/project
              unless: test -f .warm
              env:
                CUDA_VISIBLE_DEVICES: "0"
              timeout: 600
    """

    PARAMS = (
        Param("command", required=True, shell=True, doc="the shell command"),
        Param("creates", doc="skip when this path exists"),
        Param("removes", doc="skip when this path does not exist"),
        Param("unless", shell=True, doc="skip when this command exits 0"),
        Param("only_if", shell=True, doc="run only when this command exits 0"),
        Param("chdir", doc="folder to run in (default: home)"),
        Param("env", kind=dict, doc="environment variables for the command"),
        Param("timeout", kind=float, doc="seconds before the command is stopped"),
    )
    SHORTHAND = "command"
    rechecks_after_change = True

    def __init__(self, params: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        p = self.params
        self.command: str = p["command"]
        self.chdir: str | None = p["chdir"] or None
        self.creates: str | None = p["creates"] or None
        self.removes: str | None = p["removes"] or None
        self.unless: str | None = p["unless"] or None
        self.only_if: str | None = p["only_if"] or None
        self.env: dict[str, str] = dict(p["env"] or {})
        if p["timeout"] is not None:
            self.timeout = float(p["timeout"])

    # Guards as the probe asks them: commands run where the step's command would.
    def _guard_query(self, command: str) -> Query:
        # eval in the probe's own shell, not `sh -c`: a guard never shows in any process's argv.
        env = "".join(f"export {k}={shlex.quote(v)}; " for k, v in self.env.items())
        return Query("cmd", f"cd {sh_path(remote_path(self.chdir or '~'))} && {env}eval {shlex.quote(command)}")

    def _path_query(self, path: str) -> Query:
        return Query("exists", remote_path(path, self.chdir))

    @classmethod
    def validate(cls, params: dict[str, Any], where: str) -> None:
        for key in params.get("env") or {}:
            if not key.isidentifier() or not key.isascii():
                raise ConfigError(f"{where}: shell env {key!r} is not an environment variable name",
                                  "letters, digits and _, not starting with a digit")

    @property
    def guarded(self) -> bool:
        return any((self.creates, self.removes, self.unless, self.only_if))

    def queries(self) -> list[Query]:
        out = [self._path_query(p) for p in (self.creates, self.removes) if p]
        out += [self._guard_query(c) for c in (self.unless, self.only_if) if c]
        return out

    def _decide(self, facts: HostFacts) -> tuple[bool, str]:
        """(should run, why), from the probe's answers; an unanswered guard means run."""
        if self.creates and facts.answer(self._path_query(self.creates)) is True:
            return False, f"{self.creates} exists"
        if self.removes and facts.answer(self._path_query(self.removes)) is False:
            return False, f"{self.removes} does not exist"
        if self.unless and facts.answer(self._guard_query(self.unless)) == 0:
            return False, "unless: exited 0"
        if self.only_if:
            code = facts.answer(self._guard_query(self.only_if))
            if code not in (None, 0):
                return False, f"only_if: exited {code}"
        if not self.guarded:
            return True, "no guard: runs on every apply"
        reasons = []
        if self.creates:
            reasons.append(f"{self.creates} is missing")
        if self.removes:
            reasons.append(f"{self.removes} exists")
        if self.unless:
            reasons.append("unless: did not exit 0")
        if self.only_if:
            reasons.append("only_if: exited 0")
        return True, "; ".join(reasons)

    def check(self, facts: HostFacts) -> Change | None:
        run, why = self._decide(facts)
        return Change(f"run `{short_command(self.command)}`", why) if run else None

    def noop_reason(self, facts: HostFacts) -> str:
        return self._decide(facts)[1]

    def describe(self) -> str:
        return self.name or f"shell: {short_command(self.command)}"

    def apply(self, conn: Connection, facts: HostFacts, io: StepIO) -> Result:
        args = [self.chdir or "", self.creates or "", self.removes or "", self.unless or "",
                self.only_if or "", self.command, *(f"{k}={v}" for k, v in self.env.items())]
        first, skipped = True, False

        def forward(chunk: str) -> None:
            nonlocal first, skipped
            # The guard's verdict is the first (and only) line of a skip: not the command's output.
            if first:
                first, skipped = False, chunk.startswith(SKIP_MARKER)
            if not skipped:
                io.write(chunk)

        result = conn.run_script(_script(), args, timeout=self.timeout, on_output=forward)
        output = result.stdout + result.stderr
        if result.ok and output.startswith(SKIP_MARKER):
            return Result(OK, message=output[len(SKIP_MARKER):].strip())
        if result.ok:
            return Result(CHANGED, output=output)
        lines = output.strip().splitlines()
        last = f": {lines[-1]}" if lines else ""
        return Result(FAILED, message=f"exited {result.exited}{last}", output=output)

    def to_ansible(self, index: int = 0) -> list[dict[str, Any]]:
        tasks: list[dict[str, Any]] = []
        where: dict[str, Any] = {"chdir": self.chdir} if self.chdir else {}
        when: list[str] = []
        for key, command, test in (("unless", self.unless, "!= 0"), ("only_if", self.only_if, "== 0")):
            if not command:
                continue
            register_as = f"remoteenv_{key}_{index}"
            tasks.append({
                "name": f"{self.describe()} ({key} check)",
                "ansible.builtin.shell": {"cmd": command, **where},
                "register": register_as,
                "changed_when": False,
                "failed_when": False,
                "check_mode": False,
            })
            when.append(f"{register_as}.rc {test}")
        args: dict[str, Any] = {"cmd": self.command, **where}
        where_env = {"environment": dict(self.env)} if self.env else {}
        if self.creates:
            args["creates"] = self.creates
        if self.removes:
            args["removes"] = self.removes
        task = {**self.ansible_common(), "ansible.builtin.shell": args, **where_env}
        if when:
            task["when"] = when
        tasks.append(task)
        return tasks
