"""One long-lived shell per kept connection (remote/shell.sh), for scripts that need no new SSH session.

A command on a kept connection still costs the host a session: sshd forks, the login shell starts,
the channel opens and closes in a few round trips of packets. On a fleet that is most of what a
no-op run costs each host. Scripts sent without arguments and without streamed output (the probe,
the steps' checks) go instead to a shell the keeper started once on that connection, which runs
each in a fresh `/bin/sh`, as the session would have, and keeps each script's text so the same probe
is sent once per connection, not once per run. A script's time limit is kept from here: when it is up,
the script and everything it started are signalled by the session's marker (TERM, then KILL), as the
host's `timeout -k` would; the host runs no `timeout` process for it, which on a fleet was a good
part of what each script cost the host. (A script whose link dies before its time is up runs to its
own end, as an ssh command without a terminal does; the keeper stops it by its marker as soon as
it reaches the host again: server.Keeper._reap_lost.)

The shell runs one script at a time: a second command while it is busy, a script with arguments
(secrets travel in those) or one whose output is streamed takes the ordinary path, as does every
command when the shell cannot start (no `head` on the host). An interrupt reaches the script
through the session's marker, as it does an ordinary command.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import select
import shlex
import threading
import time
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

from remoteenv.errors import CommandTimeout
from remoteenv.transport.options import RunResult
from remoteenv.transport.scripted import short_command

log = logging.getLogger("remoteenv.keeper")

READY = b"remoteenv-shell ready\n"
START_WAIT = 10.0
KILL_AFTER = 5.0  # seconds from TERM to KILL for a script over its time (`timeout -k 5`)
GONE_WAIT = 10.0  # seconds a killed script may take to be reported gone before the shell is given up
COMMAND = "/bin/sh -s"  # what the script stands for, in results and messages


class RemoteShell:
    def __init__(self, conn: Any, on_lost: Callable[[str], None] | None = None) -> None:
        self.conn = conn  # the kept transport.connection.Connection
        self.on_lost = on_lost  # told the marker of a script whose link died while it ran
        self.chan: Any = None
        self.kept: set[str] = set()  # digests of the scripts the running shell keeps
        self.lock = threading.Lock()
        self.unusable = False  # it could not start on this host: never try again on this connection

    def run(self, view: Any, text: str, timeout: float | None) -> RunResult | None:
        """Run script `text` for `view` (a session's Connection); None: take the ordinary path."""
        if self.unusable or not self.lock.acquire(blocking=False):
            return None
        try:
            if not self._ready():
                return None
            return self._run(view, text, timeout)
        finally:
            self.lock.release()

    def close(self) -> None:
        with self.lock:
            self._drop()

    # -- inside the lock -----------------------------------------------------------------------------
    def _ready(self) -> bool:
        if self.chan is not None and not self.chan.closed and not self.chan.exit_status_ready():
            return True
        self._drop()
        try:
            chan = self.conn.transport.open_session(timeout=30)
            chan.exec_command("exec /bin/sh -c " + shlex.quote(_driver()))
            got = b""
            deadline = time.monotonic() + START_WAIT
            while not got.endswith(READY):
                if chan.closed or chan.exit_status_ready() or time.monotonic() > deadline:
                    raise OSError(f"no shell: {got[-200:]!r}")
                select.select([chan], [], [], 0.2)
                while chan.recv_ready():
                    got += chan.recv(4096)
                while chan.recv_stderr_ready():
                    chan.recv_stderr(4096)
        except Exception as exc:  # any failure here only means the ordinary path
            log.info("%s: no kept shell (%s); commands open sessions", self.conn.host.name, exc)
            self.unusable = isinstance(exc, OSError) and str(exc).startswith("no shell")
            return False
        self.chan = chan
        return True

    def _drop(self) -> None:
        if self.chan is not None:
            try:
                self.chan.close()
            except Exception:  # a dead link: nothing to close politely
                pass
        self.chan, self.kept = None, set()

    def _run(self, view: Any, text: str, timeout: float | None) -> RunResult | None:
        data = text.encode()
        digest = hashlib.sha256(data).hexdigest()
        started = time.monotonic()
        for attempt in range(2):
            cid = secrets.token_hex(8)
            send = attempt == 1 or digest not in self.kept
            header = f"{cid} {view._marker} {digest} {len(data) if send else 0}\n".encode()
            try:
                self.chan.sendall(header + (data if send else b""))
            except Exception:  # nothing ran: the shell went away between commands
                self._drop()
                return None
            if send:
                self.kept.add(digest)
            # The view's interrupt then signals this script by its marker. Not through the shell's
            # channel: the shell outlives its scripts, and a request racing its close would end the
            # connection.
            running = _Script()
            view._running.add(running)
            try:
                out, err, ended, over = self._collect(view, cid, timeout, started)
            finally:
                view._running.discard(running)
            if ended == "missing":  # the host lost the kept copy (a cleaned /tmp): send it again
                self.kept.discard(digest)
                continue
            if over:
                raise CommandTimeout(self.conn.host.name, f"`{COMMAND}`", timeout or 0)
            return RunResult(COMMAND, int(ended), _strip(out, cid, ended).decode(errors="replace"),
                             _strip(err, cid, None).decode(errors="replace"), time.monotonic() - started)
        raise view.lost("while a command ran", OSError("the kept shell lost the script twice"))

    def _collect(self, view: Any, cid: str, timeout: float | None,
                 started: float) -> tuple[bytes, bytes, str, bool]:
        """The script's stdout and stderr up to and with both end lines, what stdout's end line says (the
        exit code, or "missing"), and whether the script was ended for running over its time."""
        chan = self.chan
        out, err = bytearray(), bytearray()
        out_tail = b"\n" + cid.encode() + b" "
        err_end = b"\n" + cid.encode() + b"\n"
        term_at = started + timeout if timeout is not None else None
        kill_at: float | None = None
        give_up_at: float | None = None
        ended: str | None = None
        err_done = False
        while True:
            due = [t for t in (term_at, kill_at, give_up_at) if t is not None]
            wait = 0.2 if not due else max(0.0, min(0.2, min(due) - time.monotonic()))
            select.select([chan], [], [], wait)
            while chan.recv_ready():
                out += chan.recv(65536)
                ended = _end_of(out, out_tail)
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
                err_done = err.endswith(err_end)
            if ended is not None and err_done:
                return bytes(out), bytes(err), ended, term_at is None and timeout is not None
            if chan.closed or chan.exit_status_ready() or chan.eof_received:
                self._drop()
                if self.on_lost is not None:
                    self.on_lost(view._marker)
                raise view.lost("while a command ran")
            now = time.monotonic()
            if term_at is not None and now >= term_at:
                term_at, kill_at = None, now + KILL_AFTER
                view._signal_marked("TERM")
            elif kill_at is not None and now >= kill_at:
                kill_at, give_up_at = None, now + GONE_WAIT
                view._signal_marked("KILL")
            elif give_up_at is not None and now >= give_up_at:
                self._drop()  # killed, and still no answer: the host does not answer
                raise CommandTimeout(self.conn.host.name, f"`{short_command(COMMAND)}`", timeout or 0)


class _Script:
    """A script running in a kept shell, in a session view's running set."""


@cache
def _driver() -> str:
    """shell.sh as the `sh -c` argument: its first line names it in `ps`; the other comments go."""
    lines = resources.files("remoteenv.remote").joinpath("shell.sh").read_text(encoding="utf-8").splitlines()
    return "\n".join([lines[0], *(ln for ln in lines[1:] if not ln.lstrip().startswith("#"))]) + "\n"


def _end_of(out: bytearray, tail: bytes) -> str | None:
    """What stdout's end line ("\\nID EXIT\\n" or "\\nID missing\\n", `tail` being "\\nID ") says once it
    came; None before. A plain search, not a pattern: a pattern per script (each ID is new) would be
    compiled each time, a cost every host of a fleet pays."""
    if not out.endswith(b"\n"):
        return None
    start = out.rfind(tail, max(0, len(out) - 80))
    if start < 0:
        return None
    word = bytes(out[start + len(tail):-1])
    return word.decode() if word.isdigit() or word == b"missing" else None


def _strip(data: bytes, cid: str, ended: str | None) -> bytes:
    tail = b"\n" + cid.encode() + (b" " + ended.encode() if ended is not None else b"") + b"\n"
    return data[: len(data) - len(tail)]
