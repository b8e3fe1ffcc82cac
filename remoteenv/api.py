"""The library's front door: what the CLI calls, usable from Python without it.

    >>> from remoteenv import api
    >>> facts = api.probe("gpu-box")          # doctest: +SKIP
    >>> facts.gpus[0].name                    # doctest: +SKIP
    'NVIDIA A100-SXM4-80GB'
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from remoteenv import facts as facts_mod
from remoteenv.errors import Cancelled, RemoteenvError
from remoteenv.inventory import Host, Inventory, SSHConfigFile, load_inventory, resolve
from remoteenv.transport import ConnectOptions, connect

if TYPE_CHECKING:
    from remoteenv.transport import Connection

T = TypeVar("T")

EXAMPLE_INVENTORIES = ("hosts.example.yaml", "hosts.example.ini", "hosts.example.txt")


def example_inventory(name: str = "hosts.example.yaml") -> Path:
    """The shipped example inventory `name`, documented field by field.

    Installed: remoteenv/configs inside the package (package data); from a source tree: configs/ at
    its top. Hints name this path, so it must exist wherever remoteenv runs.
    """
    if name not in EXAMPLE_INVENTORIES:
        raise ValueError(f"no example inventory {name!r}; there are {', '.join(EXAMPLE_INVENTORIES)}")
    package = Path(__file__).resolve().parent
    installed = package / "configs"
    return (installed if installed.is_dir() else package.parent / "configs") / name


def connect_options(inventory: Inventory, *, accept_new_host_key: bool = False,
                    connect_timeout: float | None = None,
                    ssh_config: SSHConfigFile | None = None) -> ConnectOptions:
    """Options whose ProxyJump hops resolve through the same inventory and ssh config.

    The ssh config is read only when a hop needs resolving (most hosts have none), or taken from
    the caller, which has usually read it already to resolve the host itself.
    """
    configs = [ssh_config] if ssh_config is not None else []

    def resolve_jump(name: str) -> Host:
        if not configs:
            configs.append(SSHConfigFile())
        return resolve(inventory, name, configs[0])

    # Explicit (argument, then REMOTEENV_CONNECT_TIMEOUT) beats the host's ssh config ConnectTimeout.
    env_timeout = os.environ.get("REMOTEENV_CONNECT_TIMEOUT")
    timeout = connect_timeout or (float(env_timeout) if env_timeout else None)
    return ConnectOptions(accept_new_host_key=accept_new_host_key, connect_timeout=timeout,
                          resolve_jump=resolve_jump)


@contextmanager
def open_host(name_or_host: str | Host, inventory: Inventory | None = None,
              accept_new_host_key: bool = False) -> Iterator[Connection]:
    inventory = inventory if inventory is not None else load_inventory()
    config = SSHConfigFile() if not isinstance(name_or_host, Host) else None
    host = name_or_host if isinstance(name_or_host, Host) else resolve(inventory, name_or_host, config)
    conn = connect(host, connect_options(inventory, accept_new_host_key=accept_new_host_key, ssh_config=config))
    try:
        yield conn
    finally:
        conn.close()


def probe(name_or_host: str | Host, inventory: Inventory | None = None,
          accept_new_host_key: bool = False) -> facts_mod.HostFacts:
    """Connect and learn the host's facts in one round trip."""
    with open_host(name_or_host, inventory, accept_new_host_key) as conn:
        return facts_mod.gather(conn)


@dataclass
class ProbeOutcome:
    host: Host
    facts: facts_mod.HostFacts | None = None
    error: RemoteenvError | None = None


def probe_many(hosts: list[Host], inventory: Inventory, accept_new_host_key: bool = False,
               forks: int = 32, on_done: Callable[[ProbeOutcome], None] | None = None,
               cancel: threading.Event | None = None) -> list[ProbeOutcome]:
    """Probe several hosts at once, in the fleet pool every multi-host command shares.

    One host's failure is its own outcome, not everyone's. `on_done` is called (from worker threads)
    as each host's outcome is known, for progress. A cancel (`cancel`, Ctrl-C, SIGTERM, SIGHUP) ends
    the probe within seconds: hosts that had not answered get a `Cancelled` error.
    """
    from remoteenv.fleet import Cancelled as FleetCancelled
    from remoteenv.fleet import Fleet

    fleet: Fleet[int] = Fleet(connect_options(inventory, accept_new_host_key=accept_new_host_key), cancel, forks)
    outcomes: list[ProbeOutcome | None] = [None] * len(hosts)

    def one(index: int) -> None:
        host = hosts[index]
        conn = None
        try:
            conn = fleet.connect(host)
            outcome = ProbeOutcome(host, facts_mod.gather(conn))
        except FleetCancelled:
            outcome = ProbeOutcome(host, error=Cancelled(host.name, fleet.exit_code))
        except RemoteenvError as exc:
            # A connection closed by the cancel fails as "lost": the cause was the cancel.
            outcome = ProbeOutcome(host, error=Cancelled(host.name, fleet.exit_code) if fleet.cancel.is_set()
                                   else exc)
        except Exception as exc:  # a bug must cost this host only
            outcome = ProbeOutcome(host, error=RemoteenvError(
                f"{host.name}: internal error: {type(exc).__name__}: {exc}",
                "re-run with REMOTEENV_DEBUG=1 and report it"))
        finally:
            fleet.release(conn)
        outcomes[index] = outcome
        if on_done:
            on_done(outcome)

    fleet.run(list(range(len(hosts))), one)
    return [o if o is not None else ProbeOutcome(hosts[i], error=Cancelled(hosts[i].name, fleet.exit_code))
            for i, o in enumerate(outcomes)]


def conda_install(hosts: list[str | Host], inventory: Inventory | None = None, *, plan: bool = False,
                  forks: int = 32, accept_new_host_key: bool = False,
                  on_event: Callable[..., None] | None = None, **settings: str | bool | None):
    """`remoteenv conda install` from Python: the conda step on `hosts`; returns the run's report.

    `settings` are the step's parameters (dist, version, prefix, via, installer, installer_url, sha256,
    mirror, pip_index, wheelhouse, accept_anaconda_tos, force, init_shell); those not given come from
    the hosts' `conda_*` variables, then the step's defaults.

        >>> report = api.conda_install(["gpu-box"], dist="miniforge", mirror="tuna")   # doctest: +SKIP
        >>> report.exit_code()                                                         # doctest: +SKIP
        0
    """
    from remoteenv.inventory import resolve_many
    from remoteenv.playbook import load_text
    from remoteenv.runner import run_playbook

    inventory = inventory if inventory is not None else load_inventory()
    resolved = [h for h in hosts if isinstance(h, Host)]
    names = [h for h in hosts if not isinstance(h, Host)]
    resolved += resolve_many(inventory, names) if names else []
    extra = {f"conda_{key}": ("true" if value is True else str(value)) for key, value in settings.items()
             if value not in (None, False, "")}
    playbook = load_text("name: conda-install\nsteps:\n  - conda: {}\n", "remoteenv.api.conda_install")
    return run_playbook(playbook, resolved, inventory, mode="plan" if plan else "apply", forks=forks,
                        accept_new_host_key=accept_new_host_key, extra_vars=extra, on_event=on_event)


@dataclass
class HostAnswer(Generic[T]):
    """One host's answer to `each_host`: its value, or why there is none."""

    host: str
    value: T | None = None
    error: str | None = None


def each_host(hosts: list[Host], inventory: Inventory, job: Callable[[Connection], T], *, forks: int = 32,
              accept_new_host_key: bool = False) -> list[HostAnswer[T]]:
    """`job(connection)` on every host at once in the fleet pool; one answer per host, in order."""
    from remoteenv.fleet import Cancelled as FleetCancelled
    from remoteenv.fleet import Fleet

    fleet: Fleet[int] = Fleet(connect_options(inventory, accept_new_host_key=accept_new_host_key), None, forks)
    out: list[HostAnswer[T]] = [HostAnswer(h.name, error="cancelled before it answered") for h in hosts]

    def one(index: int) -> None:
        conn = None
        try:
            conn = fleet.connect(hosts[index])
            out[index] = HostAnswer(hosts[index].name, job(conn))
        except FleetCancelled:
            pass
        except RemoteenvError as exc:
            out[index] = HostAnswer(hosts[index].name, error=exc.one_line())
        finally:
            fleet.release(conn)

    fleet.run(list(range(len(hosts))), one)
    if fleet.cancel.is_set():
        raise Cancelled("the run", fleet.exit_code)
    return out


class GPUPoller:
    """The GPUs of `hosts`, asked again at each poll() over connections that stay open between polls.

    Each host is asked in a thread of its own; a host that has not answered within a poll's timeout
    shows its last answer (or "no answer yet") and never holds the others up. A host whose connection
    failed is connected again at the next poll.
    """

    def __init__(self, hosts: list[Host], inventory: Inventory, *, forks: int = 64,
                 accept_new_host_key: bool = False) -> None:
        self.hosts = hosts
        self.options = connect_options(inventory, accept_new_host_key=accept_new_host_key)
        self._conns: dict[str, Connection] = {}
        self._busy: dict[str, threading.Thread] = {}
        self._last: dict[str, object] = {}
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(forks)
        self._closed = False

    def _ask(self, host: Host) -> None:
        from remoteenv import gpus

        with self._slots:
            conn = self._conns.get(host.name)
            try:
                if conn is None:
                    conn = connect(host, self.options)
                    if self._closed:
                        conn.close()
                        return
                    self._conns[host.name] = conn
                answer = gpus.query(conn)
            except RemoteenvError as exc:
                answer = gpus.HostGPUs(host.name, error=exc.one_line())
                dead = self._conns.pop(host.name, None)
                if dead is not None:
                    dead.close()
            with self._lock:
                self._last[host.name] = answer

    def poll(self, timeout: float = 30.0) -> list:  # -> list[gpus.HostGPUs]
        import time

        from remoteenv import gpus

        started: list[threading.Thread] = []
        for host in self.hosts:
            running = self._busy.get(host.name)
            if running is not None and running.is_alive():
                continue  # still busy with the last poll's question
            thread = threading.Thread(target=self._ask, args=(host,), daemon=True, name=f"gpus-{host.name}")
            self._busy[host.name] = thread
            thread.start()
            started.append(thread)
        deadline = time.monotonic() + timeout
        for thread in started:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            return [self._last.get(h.name) or gpus.HostGPUs(h.name, error=f"no answer within {timeout:g}s")
                    for h in self.hosts]

    def close(self) -> None:
        self._closed = True
        for conn in list(self._conns.values()):
            conn.close()
        self._conns.clear()


def env_packages(hosts: list[Host], inventory: Inventory, name: str, prefix: str, *, forks: int = 32,
                 accept_new_host_key: bool = False):  # -> list[envstate.EnvPackages]
    """What env `name` under `prefix` holds on each host, read at once in the fleet pool."""
    from remoteenv import envstate

    answers = each_host(hosts, inventory, lambda conn: envstate.installed(conn, prefix, name), forks=forks,
                        accept_new_host_key=accept_new_host_key)
    return [envstate.EnvPackages(a.host, a.value) if a.error is None and a.value is not None
            else envstate.EnvPackages(a.host, error=a.error) for a in answers]
