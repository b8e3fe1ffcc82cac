"""What a host is, learned in one round trip: the probe script's output as typed HostFacts.

The JSON form (`to_json`) is a documented, stable schema (README, "probe --json"); add keys, never
rename or remove them without raising `schema`.
"""

from __future__ import annotations

import base64
import json
import logging
import shlex
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from remoteenv.errors import CommandFailed
from remoteenv.gpus import GPU, Report
from remoteenv.scripts import script

__all__ = ["GPU", "CondaInstall", "FileState", "FileText", "HostFacts", "Process", "Query", "gather", "parse"]

if TYPE_CHECKING:
    from remoteenv.transport import Connection

SCHEMA = 1

log = logging.getLogger("remoteenv.facts")


# The most of a file a `read` question brings back: stamps and small settings, not data.
READ_LIMIT = 64 * 1024


@dataclass(frozen=True)
class FileState:
    """A regular file as a `file` question sees it."""

    sha256: str
    mode: int  # permission bits, e.g. 0o644


@dataclass(frozen=True)
class FileText:
    """A small file as a `read` question brings it back (at most READ_LIMIT bytes of it)."""

    text: str
    truncated: bool = False


def _parse_exists(raw: str) -> bool:
    return raw == "1"


def _parse_file(raw: str) -> FileState | None:
    digest, _, mode = raw.partition(" ")
    if raw in ("", "-") or len(digest) != 64:
        return None
    try:
        return FileState(digest, int(mode, 8) if mode else 0)
    except ValueError:
        return None


def _parse_cmd(raw: str) -> int | None:
    return int(raw) if raw.isdigit() else None


def _parse_read(raw: str) -> FileText | None:
    if not raw.startswith(("b64:", "big:")):
        return None
    try:
        data = base64.b64decode(raw[4:], validate=False)
    except ValueError:
        return None
    big = raw.startswith("big:")
    return FileText(data[:READ_LIMIT].decode("utf-8", errors="replace"), big)


# Each kind of question: its shell function in remote/probe.sh, and how its answer reads.
QUERY_KINDS: dict[str, Callable[[str], Any]] = {
    "exists": _parse_exists,  # does the path exist -> bool
    "file": _parse_file,  # a regular file's SHA-256 and mode -> FileState, or None when there is none
    "cmd": _parse_cmd,  # a read-only shell command's exit code -> int
    "read": _parse_read,  # a small file's text -> FileText, or None when it cannot be read
}


@dataclass(frozen=True)
class Query:
    """A question a step asks of the host, answered within the probe's single round trip.

    `kind` is one of QUERY_KINDS; `arg` a path (`~/` is the home folder) or, for `cmd`, a command.
    """

    kind: str
    arg: str

    def __post_init__(self) -> None:
        if self.kind not in QUERY_KINDS:
            raise ValueError(f"unknown query kind {self.kind!r}")

    @property
    def id(self) -> str:
        import hashlib

        return hashlib.sha1(f"{self.kind}\0{self.arg}".encode()).hexdigest()[:12]

    def shell(self) -> str:
        return f"q_{self.kind} {self.id} {shlex.quote(self.arg)}"

    def parse(self, raw: str) -> Any:
        return QUERY_KINDS[self.kind](raw)


@dataclass
class CondaInstall:
    prefix: str
    version: str | None
    envs: list[str] = field(default_factory=list)  # names; "base" first
    env_prefixes: dict[str, str] = field(default_factory=dict)


@dataclass
class Process:
    """A process remoteenv started detached on the host (transport/detach.py), as the probe found it."""

    name: str
    pid: int
    alive: bool


@dataclass
class HostFacts:
    hostname: str = ""
    user: str = ""
    home: str = ""
    shell: str = ""
    os_id: str = ""
    os_version: str = ""
    os_name: str = ""
    kernel: str = ""
    arch: str = ""
    cpus: int | None = None
    memory_bytes: int | None = None
    disk_free_bytes: int | None = None
    glibc: str | None = None
    python3: str | None = None  # version, e.g. "3.11.2"
    python3_path: str | None = None
    tools: list[str] = field(default_factory=list)
    gpus: list[GPU] = field(default_factory=list)
    gpu_error: str | None = None  # nvidia-smi is there and failed (a driver problem)
    cuda_version: str | None = None
    conda: list[CondaInstall] = field(default_factory=list)
    jupyter: list[dict[str, Any]] = field(default_factory=list)
    processes: list[Process] = field(default_factory=list)
    answers: dict[str, str] = field(default_factory=dict)  # Query.id -> answer

    def answer(self, query: Query) -> Any:
        """The typed answer to `query` (see QUERY_KINDS), or None when it was not asked."""
        raw = self.answers.get(query.id)
        return None if raw is None else query.parse(raw)

    def asked(self, query: Query) -> bool:
        return query.id in self.answers

    def has_tool(self, name: str) -> bool:
        return name in self.tools

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "hostname": self.hostname,
            "user": self.user,
            "home": self.home,
            "os": {"id": self.os_id, "version": self.os_version, "name": self.os_name},
            "kernel": self.kernel,
            "arch": self.arch,
            "cpus": self.cpus,
            "memory_bytes": self.memory_bytes,
            "disk_free_bytes": self.disk_free_bytes,
            "glibc": self.glibc,
            "python3": {"path": self.python3_path, "version": self.python3} if self.python3 else None,
            "gpus": [g.to_json() for g in self.gpus],
            "gpu_error": self.gpu_error,
            "cuda_version": self.cuda_version,
            "conda": [{"prefix": c.prefix, "version": c.version, "envs": list(c.envs)} for c in self.conda],
            "jupyter": list(self.jupyter),
            "processes": [asdict(p) for p in self.processes],
        }


def json_text(facts: HostFacts) -> str:
    """What `remoteenv probe HOST --json` prints (cli/output.print_json's form), for the paths that
    print it without the command line: remoteenv.cli.fast and, for it, the keeper."""
    return json.dumps(facts.to_json(), indent=2, sort_keys=False, default=str) + "\n"


def probe_script(queries: list[Query] | tuple[Query, ...] = (), *, brief: bool = False) -> str:
    # `brief` in the text, not an argument: a script without arguments is the same text on every
    # host and every run, which a kept connection's shell keeps and does not need sent again.
    base = script("probe.sh")
    if brief:
        base = base.replace("\nprobe_detail=full\n", "\nprobe_detail=brief\n", 1)
    lines = [q.shell() for q in dict.fromkeys(queries)]
    return base + "\n".join(lines) + "\nemit \"end${T}1\"\nprintf '%s' \"$probe_out\"\n"


def _int(text: str) -> int | None:
    try:
        return int(text.strip())
    except ValueError:
        return None


def parse(output: str) -> HostFacts:
    """Probe output -> HostFacts. Unknown keys are ignored (newer scripts, older parsers)."""
    facts = HostFacts()
    conda: dict[str, CondaInstall] = {}
    gpu_report = Report()
    for line in output.splitlines():
        key, _, rest = line.partition("\t")
        values = rest.split("\t")
        value = rest
        if key in ("hostname", "user", "home", "shell", "os_id", "os_version", "os_name", "kernel", "arch"):
            setattr(facts, key, value)
        elif key == "cpus":
            facts.cpus = _int(value)
        elif key == "memory_kib":
            kib = _int(value)
            facts.memory_bytes = kib * 1024 if kib is not None else None
        elif key == "disk_free_kib":
            kib = _int(value)
            facts.disk_free_bytes = kib * 1024 if kib is not None else None
        elif key == "glibc":
            facts.glibc = value or None
        elif key == "python3" and len(values) >= 2:
            facts.python3_path, facts.python3 = values[0], values[1] or None
        elif key == "tool":
            facts.tools.append(value)
        elif key in ("gpu", "app", "ps", "gpuerr"):
            gpu_report.add(key, value)
        elif key == "cuda":
            facts.cuda_version = value or None
        elif key == "conda" and values:
            install = CondaInstall(values[0], (values[1] if len(values) > 1 else "") or None, ["base"],
                                   {"base": values[0]})
            conda[values[0]] = install
        elif key == "conda_env" and len(values) >= 3 and values[0] in conda:
            conda[values[0]].envs.append(values[1])
            conda[values[0]].env_prefixes[values[1]] = values[2]
        elif key == "proc" and len(values) >= 3 and values[1].isdigit():
            facts.processes.append(Process(values[0], int(values[1]), values[2] == "1"))
        elif key == "jupyter":
            try:
                facts.jupyter.append(json.loads(value))
            except ValueError:
                pass
        elif key == "q" and len(values) >= 2:
            facts.answers[values[0]] = values[1]
    facts.conda = list(conda.values())
    facts.gpus, facts.gpu_error = gpu_report.finish()
    # A Jupyter server's state file outlives it: whether it runs is its process's (pid and start time).
    alive = {p.name: p.alive for p in facts.processes}
    for server in facts.jupyter:
        if isinstance(server, dict):
            server["alive"] = alive.get(f"jupyter-{server.get('name')}", False)
    return facts


def gather(conn: Connection, queries: list[Query] | tuple[Query, ...] = (), timeout: float = 60,
           *, brief: bool = False) -> HostFacts:
    """Run the probe (and the steps' queries) on the host in one round trip.

    `brief`: without the facts only people read (free disk, glibc, python3: None), as runs ask it.
    """
    result = conn.run_script(probe_script(queries, brief=brief), timeout=timeout)
    log.debug("%s: probe (%d questions) answered in %.3fs", conn.host.name, len(queries), result.duration)
    if "end\t1" not in result.stdout:
        raise CommandFailed(conn.host.name, "probe", result.exited, result.stderr or result.stdout)
    facts = parse(result.stdout)
    if facts.home:
        conn.home = facts.home  # later uploads resolve `~` without asking SFTP
    return facts
