"""Dead-peer detection, as OpenSSH's ServerAliveInterval / ServerAliveCountMax do it.

paramiko's own keepalive sends a message that asks for no reply, so it can never notice that the
peer is gone: a host whose link is cut mid-step would hold its run until TCP gives up (a quarter of
an hour or more), and an SFTP write blocked on the channel window would wait forever. Here, every
connection records when it last received a packet; when nothing has arrived for `interval` seconds
a request that must be answered is sent, and after `count_max` intervals more with no answer the
connection is declared dead and its transport closed, which wakes every call blocked on it.

One daemon thread watches every connection of the process: a fleet of 50 hosts costs one thread.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from dataclasses import dataclass, field

from remoteenv.sshlib import load_paramiko

# Held-back Invoke: see remoteenv.sshlib. Not at the package's import: a kept connection needs no paramiko.
paramiko = load_paramiko()


log = logging.getLogger("remoteenv.transport")

# OpenSSH's keyword defaults are 0 (off) and 3; off means a dead link hangs, so remoteenv's default
# interval is 15 s: a dead host is declared dead within a minute.
DEFAULT_INTERVAL = 15.0
DEFAULT_COUNT_MAX = 3


@dataclass
class Liveness:
    """What the watcher knows of one transport."""

    name: str
    interval: float
    count_max: int
    last_received: float = field(default_factory=time.monotonic)
    sent: int = 0  # requests sent since the last packet arrived
    sending: bool = False
    dead: str | None = None  # why the connection was declared dead


def settings(host: object, options: object) -> tuple[float, int]:
    """(interval, count_max) for a host: the caller's options, else its ssh config, else the defaults."""
    interval = getattr(options, "keepalive_interval", None)
    if interval is None:
        interval = getattr(host, "server_alive_interval", None)
    count = getattr(options, "keepalive_count_max", None)
    if count is None:
        count = getattr(host, "server_alive_count_max", None)
    return (DEFAULT_INTERVAL if interval is None else float(interval),
            DEFAULT_COUNT_MAX if count is None else int(count))


_watched: weakref.WeakKeyDictionary[paramiko.Transport, Liveness] = weakref.WeakKeyDictionary()
_lock = threading.Lock()
_thread: threading.Thread | None = None


def watch(transport: paramiko.Transport, name: str, interval: float, count_max: int) -> Liveness | None:
    """Start watching `transport`; `interval` <= 0 turns detection off (as ServerAliveInterval 0)."""
    if interval <= 0:
        return None
    state = Liveness(name, interval, max(1, count_max))
    packetizer = transport.packetizer
    read_message = packetizer.read_message

    def counted_read() -> tuple:
        message = read_message()
        state.last_received = time.monotonic()
        state.sent = 0
        return message

    # Every packet the transport thread reads passes here: any traffic proves the peer alive.
    packetizer.read_message = counted_read  # type: ignore[method-assign]
    with _lock:
        _watched[transport] = state
        _ensure_thread()
    return state


def _ensure_thread() -> None:
    global _thread
    if _thread is None or not _thread.is_alive():
        _thread = threading.Thread(target=_loop, name="remoteenv-keepalive", daemon=True)
        _thread.start()


def _loop() -> None:
    while True:
        with _lock:
            items = list(_watched.items())
        tick = 1.0
        for transport, state in items:
            tick = min(tick, state.interval / 4)
            if state.dead is None and transport.is_active():
                _check(transport, state)
        time.sleep(max(0.05, tick))


def _check(transport: paramiko.Transport, state: Liveness) -> None:
    silent = time.monotonic() - state.last_received
    if silent >= state.interval * (state.count_max + 1):
        state.dead = (f"no answer for {silent:.0f}s (ServerAliveInterval {state.interval:g}, "
                      f"ServerAliveCountMax {state.count_max})")
        log.debug("%s: declared dead: %s", state.name, state.dead)
        # Closing marks every channel closed and wakes whatever waits on one (a command, an upload).
        threading.Thread(target=_close, args=(transport,), daemon=True).start()
        return
    due = state.interval * (state.sent + 1)
    if silent >= due and not state.sending:
        state.sent += 1
        state.sending = True
        # The send itself can block on a full socket buffer of a dead link: never in this thread.
        threading.Thread(target=_send, args=(transport, state), daemon=True).start()


def _send(transport: paramiko.Transport, state: Liveness) -> None:
    try:
        msg = paramiko.Message()
        msg.add_byte(paramiko.common.cMSG_GLOBAL_REQUEST)
        msg.add_string("keepalive@openssh.com")
        msg.add_boolean(True)  # want a reply: the reply (a refusal, as OpenSSH sends) is the proof of life
        transport._send_user_message(msg)  # global_request(wait=True) would block without a deadline
    except (paramiko.SSHException, OSError, EOFError):
        pass
    finally:
        state.sending = False


def _close(transport: paramiko.Transport) -> None:
    try:
        transport.close()
    except Exception:  # a broken transport may fail to close in many ways; it is closed all the same
        pass


def dead_reason(transport: paramiko.Transport | None) -> str | None:
    if transport is None:
        return None
    with _lock:
        state = _watched.get(transport)
    return state.dead if state else None
