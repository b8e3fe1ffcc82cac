"""`remoteenv tunnel HOST`, `remoteenv tunnels`, `remoteenv down HOST`: local ports joined to services on hosts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

import typer

from remoteenv.cli import common
from remoteenv.cli.output import GLOBALS, console, err_console, print_json
from remoteenv.errors import ConfigError

if TYPE_CHECKING:
    from remoteenv.inventory import Host, Inventory
    from remoteenv.tunnel import Forward
    from remoteenv.tunnel.records import Record
    from remoteenv.tunnel.supervisor import Tunnel, TunnelEvent

BackendOpt = Annotated[str | None, typer.Option(
    "--backend", metavar="openssh|asyncssh|kept",
    help="kept: over the keeper's signed-in connection (default, for TCP services, unless --no-reuse); "
         "openssh: the system ssh client (default otherwise, where it exists); asyncssh: in process.",
    show_default=False)]
LocalPortOpt = Annotated[int | None, typer.Option(
    "--local-port", min=1, max=65535, help="The first local port to try (a busy one moves to the next free).",
    show_default=False)]
DetachOpt = Annotated[bool, typer.Option(
    "--detach", help="Keep the tunnel in the background (remoteenv down ends it).")]
KNOWN_PORTS = {"tensorboard": 6006}


@dataclass
class Opened:
    """A tunnel to one host: where it listens here and the URL to open (with its token)."""

    host: str
    forwards: list[Forward]
    url: str = field(default="", repr=False)
    tunnel: Tunnel | None = None  # in the foreground
    pid: int | None = None  # the ssh process, or the detached keeper


class Opening:
    """A tunnel being opened (in a detached keeper, or in a thread here); finish() waits for it."""

    def __init__(self, host: Host, inv: Inventory, forwards: list[Forward], *, backend: str | None, detach: bool,
                 url: str = "", service: str = "") -> None:
        from remoteenv import api
        from remoteenv.tunnel import records
        from remoteenv.tunnel.supervisor import Tunnel, backend_for

        self.host, self.forwards, self.url, self.detach = host.name, forwards, url, detach
        self.error: Exception | None = None
        name = backend or backend_for(host, forwards)
        if detach and name == "kept":
            self._hosted(host, inv, forwards, url, service)
            return
        if detach:
            from remoteenv.tunnel import keeper

            argv = None
            if name == "openssh":
                from remoteenv.tunnel.openssh import OpenSSHBackend

                argv = OpenSSHBackend(host, forwards, api.connect_options(inv)).argv()
            self.record = records.Record(id=records.new_id(host.name, forwards[0].local_port), host=host.name,
                                         backend=name, forwards=[f.to_json() for f in forwards],
                                         inventory=GLOBALS.inventory, url=url, service=service, argv=argv)
            for old in records.load_all():
                if old.id == self.record.id:
                    records.stop(old)
            self.proc = keeper.start(self.record)
            return
        self.tunnel = Tunnel(host, forwards, api.connect_options(inv), backend=name, on_event=_say)
        self.thread = threading.Thread(target=self._open, daemon=True, name=f"tunnel-open-{host.name}")
        self.thread.start()

    def _hosted(self, host: Host, inv: Inventory, forwards: list[Forward], url: str, service: str) -> None:
        """A detached tunnel the connection keeper listens for: open at once, no process to start."""
        from remoteenv import api
        from remoteenv.keeper import client
        from remoteenv.tunnel import records

        self.proc = None
        self.record = records.Record(id=records.new_id(host.name, forwards[0].local_port), host=host.name,
                                     backend="kept", forwards=[f.to_json() for f in forwards],
                                     inventory=GLOBALS.inventory, url=url, service=service, hosted=True)
        for old in records.load_all():
            if old.id == self.record.id:
                records.stop(old)
        targets = []
        for f in forwards:
            remote_host, _, remote_port = f.remote.rpartition(":")
            targets.append((f.local_port, remote_host or "127.0.0.1", int(remote_port)))
        try:
            self.record.pid = client.listen(host, api.connect_options(inv), self.record.id, targets)
        except BaseException as exc:
            self.error = exc
            return
        self.record.state = "open"
        self.record.save()

    def _open(self) -> None:
        try:
            self.tunnel.open()
        except Exception as exc:  # handed to finish(), in the caller's thread
            self.error = exc

    def finish(self, url: str | None = None, timeout: float = 60.0) -> Opened:
        """The open tunnel (its URL set now when it was not known at the start); raises its error."""
        from remoteenv.tunnel import keeper

        if url is not None:
            self.url = url
        if self.detach and self.record.hosted:
            if self.error is not None:
                raise self.error
            if self.record.url != self.url:
                self.record.url = self.url
                self.record.save()
            return Opened(self.host, self.forwards, self.url, pid=self.record.pid)
        if self.detach:
            record = keeper.wait_open(self.record, self.proc, timeout)
            if record.url != self.url:
                record.url = self.url
                record.save()  # the keeper does not write again until its state changes
            return Opened(self.host, self.forwards, self.url, pid=record.pid)
        self.thread.join(timeout)
        if self.error is not None:
            raise self.error
        if self.thread.is_alive():
            self.cancel()
            from remoteenv.tunnel import TunnelError

            raise TunnelError(f"{self.host}: the tunnel did not open within {timeout:g}s")
        return Opened(self.host, self.forwards, self.url, tunnel=self.tunnel, pid=self.tunnel.pid)

    def cancel(self) -> None:
        """Give it up (it went to the wrong place, or the run failed)."""
        from remoteenv.tunnel import records

        if self.detach and self.record.hosted:
            records.stop(self.record)
            return
        if self.detach:
            # Our own child: terminate and reap it here (a zombie would look alive to records.stop).
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            records.remove(records.load(self.record.path) or self.record)
            return
        self.tunnel.stopping.set()
        self.thread.join(5)
        self.tunnel.backend.close()


def open_tunnel(host: Host, inv: Inventory, forwards: list[Forward], *, backend: str | None, detach: bool,
                url: str = "", service: str = "") -> Opened:
    """Open `forwards` to `host`: in this process (returned open), or in a detached keeper."""
    return Opening(host, inv, forwards, backend=backend, detach=detach, url=url, service=service).finish()


def _say(event: TunnelEvent) -> None:
    if event.kind == "dropped":
        err_console().print(f"{event.host}: the tunnel dropped ({event.message})", highlight=False)
    elif event.kind == "reconnecting":
        err_console().print(f"{event.host}: {event.message}", highlight=False)
    elif event.kind == "failed":
        err_console().print(f"{event.host}: reconnecting failed: {event.message}", highlight=False)
    elif event.kind == "reopened":
        err_console().print(f"{event.host}: the tunnel is open again ({event.message})", highlight=False)


def hold(opened: list[Opened], footer: str = "") -> None:
    """Keep foreground tunnels open until Ctrl-C (or SIGTERM/SIGHUP), reconnecting when they drop."""
    live = [o.tunnel for o in opened if o.tunnel is not None]
    if not live:
        return
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in _signals()}
    threads = [threading.Thread(target=t.keep, daemon=True, name=f"tunnel-{t.host.name}") for t in live]
    for thread in threads:
        thread.start()
    err_console().print("Ctrl-C closes the tunnel" + ("s" if len(live) > 1 else "") + (f"; {footer}" if footer else ""),
                        highlight=False)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for tunnel in live:
            tunnel.stopping.set()
            tunnel.backend.close()
        for thread in threads:
            thread.join(5)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    err_console().print("tunnel closed" if len(live) == 1 else "tunnels closed", highlight=False)


def _signals() -> list[int]:
    return [s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None),
                        getattr(signal, "SIGHUP", None)) if s is not None]


def open_browser(url: str) -> bool:
    """Open `url` in the person's browser when there is one to open (not over plain SSH, not in CI)."""
    if os.environ.get("CI") or os.environ.get("REMOTEENV_NO_BROWSER"):
        return False
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    import webbrowser

    try:
        return webbrowser.open(url)
    except webbrowser.Error:
        return False


# -- services ------------------------------------------------------------------------------------
@dataclass
class Service:
    remote: str  # "127.0.0.1:PORT" or "/socket/path"
    label: str
    preferred_port: int
    url_of: object = None  # callable(local_port) -> str, for Jupyter (its token)


def resolve_services(host: Host, inv: Inventory, services: list[str], accept_new_host_key: bool) -> list[Service]:
    """What each --service names, on this host: a managed Jupyter (asked on the host), a port, a socket."""
    from remoteenv import api, jupyter
    from remoteenv.workstation import DEFAULT_LOCAL_PORT

    out: list[Service] = []
    for service in services:
        kind, _, arg = service.partition(":")
        if kind == "jupyter":
            with api.open_host(host, inv, accept_new_host_key=accept_new_host_key) as conn:
                servers = [s for s in jupyter.status(conn, [arg] if arg else []) if s.answers]
                if not servers:
                    from remoteenv.errors import RemoteenvError

                    named = f" named {arg}" if arg else ""
                    raise RemoteenvError(f"{host.name}: no running Jupyter of remoteenv's{named}",
                                         f"start one with remoteenv up {host.name} (with the -f and --dist you used), "
                                         "or remoteenv jupyter start --env NAME --dist D")
                server = servers[0]
                endpoint = jupyter.Endpoint(server, jupyter.read_token(conn, server.name))
            out.append(Service(server.where, f"jupyter {server.name}", DEFAULT_LOCAL_PORT, endpoint.url))
        elif service.isdigit() or kind in KNOWN_PORTS:
            port = int(service) if service.isdigit() else KNOWN_PORTS[kind]
            if not 0 < port < 65536:
                raise ConfigError(f"--service {service}: not a port number")
            out.append(Service(f"127.0.0.1:{port}", kind if kind in KNOWN_PORTS else str(port), port))
        elif service.startswith("/"):
            out.append(Service(service, service, DEFAULT_LOCAL_PORT))
        else:
            raise ConfigError(f"--service {service!r}: not jupyter[:NAME], a port, tensorboard or a socket path",
                              "e.g. --service jupyter --service 6006")
    return out


def tunnel(
    host: Annotated[str, typer.Argument(help="The host (inventory name, ~/.ssh/config alias, or hostname).")],
    service: Annotated[list[str] | None, typer.Option(
        "--service", "-s", help="jupyter[:NAME] (default), a port on the host, tensorboard, or a Unix socket "
                                "path; repeat for several.")] = None,
    local_port: LocalPortOpt = None,
    backend: BackendOpt = None,
    open_: Annotated[bool, typer.Option("--open", help="Open the URL in your browser.")] = False,
    detach: DetachOpt = False,
    as_json: common.JsonOpt = False,
    accept_new_host_key: common.AcceptNewOpt = False,
) -> None:
    """Join local ports to services on a host (an already running Jupyter, TensorBoard, any port).

    In the foreground the tunnel stays until Ctrl-C (Jupyter keeps running) and reconnects by itself
    when the connection drops; --detach keeps it in the background (remoteenv tunnels lists them).

    Examples:
      remoteenv tunnel gpu-box
      remoteenv tunnel gpu-box --service jupyter --service tensorboard
      remoteenv tunnel gpu-box -s 8050 --local-port 9050 --detach
    """
    from remoteenv.tunnel import Forward, free_local_port

    inv = common.inventory()
    target = common.select_hosts(inv, [host])[0]
    wanted = resolve_services(target, inv, service or ["jupyter"], accept_new_host_key)
    existing = _detached_to(target.name, [s.remote for s in wanted], local_port, backend) if detach else None
    forwards, urls, taken = [], [], set()
    for i, s in enumerate(wanted):
        if existing is not None:
            port = int(existing.forwards[i]["local_port"])
        else:
            port = free_local_port(local_port + i if local_port else s.preferred_port, taken)
        taken.add(port)
        forwards.append(Forward(port, s.remote, s.label))
        urls.append(s.url_of(port) if callable(s.url_of) else f"http://127.0.0.1:{port}/")
    opened = None
    if existing is not None:
        # The same services of the same host are already joined here: a second tunnel would only
        # take other ports for them.
        pid = existing.pid
        err_console().print(f"{target.name}: already open in the background (remoteenv tunnels)", highlight=False)
    else:
        opened = open_tunnel(target, inv, forwards, backend=backend, detach=detach, url=urls[0],
                             service=",".join(s.label for s in wanted))
        pid = opened.pid
    if as_json:
        print_json({"host": target.name, "pid": pid, "detached": detach, "reused": existing is not None,
                    "forwards": [{**f.to_json(), "url": u} for f, u in zip(forwards, urls, strict=True)]})
    else:
        for f in forwards:
            err_console().print(f"{target.name}: 127.0.0.1:{f.local_port} -> {f.remote} ({f.label})", highlight=False)
        for u in urls:
            typer.echo(u)
    if open_:
        open_browser(urls[0])
    if opened is not None and not detach:
        hold([opened])


def _detached_to(host: str, remotes: list[str], local_port: int | None, backend: str | None) -> Record | None:
    """A live background tunnel of `host` to exactly these remotes (at --local-port and through
    --backend, when given)."""
    from remoteenv.tunnel import records

    for record in records.load_all():
        if record.host != host or [str(f["remote"]) for f in record.forwards] != remotes:
            continue
        if local_port and int(record.forwards[0]["local_port"]) != local_port:
            continue
        if backend and record.backend != backend:
            continue
        return record
    return None


def tunnels(as_json: common.JsonOpt = False) -> None:
    """The tunnels kept in the background (remoteenv tunnel --detach, remoteenv up --detach).

    Examples:
      remoteenv tunnels
      remoteenv tunnels --json
    """
    from remoteenv.tunnel import records

    found = records.load_all()
    if as_json:
        print_json([{"id": r.id, "host": r.host, "pid": r.pid, "backend": r.backend, "state": r.state,
                     "forwards": r.forwards, "service": r.service, "url": r.url, "started": r.started}
                    for r in found])
        return
    if not found:
        console().print("no tunnels in the background")
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("host", "local", "remote", "state", "pid", "up"):
        table.add_column(column)
    for r in found:
        for f in r.forwards:
            table.add_row(r.host, f"127.0.0.1:{f['local_port']}", str(f["remote"]), r.state, str(r.pid),
                          f"{int(time.time() - r.started)}s")
    console().print(table)


def down(
    hosts: Annotated[list[str] | None, typer.Argument(help="Hosts whose tunnels to close (default: every one).",
                                                      show_default=False)] = None,
    stop_jupyter: Annotated[bool, typer.Option(
        "--stop-jupyter", help="Also stop the Jupyter servers remoteenv started on those hosts.")] = False,
    accept_new_host_key: common.AcceptNewOpt = False,
) -> None:
    """Close background tunnels (and with --stop-jupyter, the Jupyter servers behind them).

    Examples:
      remoteenv down gpu-box
      remoteenv down gpu-box --stop-jupyter
    """
    from remoteenv.tunnel import records

    closed = 0
    for r in records.load_all():
        if hosts and r.host not in hosts:
            continue
        if records.stop(r):
            closed += 1
            console().print(f"{r.host}: closed the tunnel on 127.0.0.1:{', '.join(map(str, r.local_ports()))}")
    if closed == 0:
        console().print("no tunnel to close" + (f" for {', '.join(hosts)}" if hosts else ""))
    if stop_jupyter:
        if not hosts:
            raise ConfigError("--stop-jupyter needs the hosts named", "e.g. remoteenv down gpu-box --stop-jupyter")
        from remoteenv import api, jupyter

        inv = common.inventory()
        answers = api.each_host(common.select_hosts(inv, hosts), inv, lambda conn: jupyter.stop(conn),
                                accept_new_host_key=accept_new_host_key)
        failed = False
        for a in answers:
            if a.error:
                failed = True
                console().print(f"{a.host}: [red]{a.error}[/red]")
            for name, pid in a.value or []:
                how = f" (pid {pid})" if pid else " (was not running)"
                console().print(f"{a.host}: stopped jupyter {name}{how}")
        if failed:
            raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("tunnel")(tunnel)
    app.command("tunnels")(tunnels)
    app.command("down")(down)


__all__ = ["down", "hold", "open_browser", "open_tunnel", "register", "tunnel", "tunnels"]
