"""The keeper's wire format: length-prefixed frames on a Unix socket. Standard library only.

A frame is a 4-byte big-endian length, a 1-byte kind, then the payload. Kinds:
  J  a JSON object (requests, replies, prompts, answers, progress)
  O  output text of a running command (UTF-8), in the order the host sent it
  D  raw bytes (a file's content)
"""

from __future__ import annotations

import struct

# The fast probe loads this module: json (and the re it imports), the socket module's Python layer,
# select and typing stay out of its start-up (it speaks through the C socket object, which has
# everything used here, and sends and reads frames, not JSON).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from typing import Any

JSON, OUTPUT, DATA = b"J", b"O", b"D"
_HEAD = struct.Struct(">IB")
MAX_FRAME = 64 * 1024 * 1024  # a file travels in chunks far below this; more is a broken peer


class WireClosed(ConnectionError):
    """The other side went away (mid-frame or between frames)."""


def frame(kind: bytes, payload: bytes) -> bytes:
    return _HEAD.pack(len(payload), kind[0]) + payload


def send(sock: socket.socket, kind: bytes, payload: bytes) -> None:
    sock.sendall(frame(kind, payload))


def send_json(sock: socket.socket, obj: dict[str, Any]) -> None:
    import json

    send(sock, JSON, json.dumps(obj, separators=(",", ":")).encode())


def _exactly(sock: socket.socket, n: int) -> bytes:
    chunks: list[bytes] = []
    while n:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            raise WireClosed("the other side closed the connection")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def receive(sock: socket.socket) -> tuple[bytes, bytes]:
    """The next frame as (kind, payload)."""
    length, kind = _HEAD.unpack(_exactly(sock, _HEAD.size))
    if length > MAX_FRAME:
        raise WireClosed(f"a frame of {length} bytes: not a remoteenv keeper")
    return bytes([kind]), _exactly(sock, length) if length else b""


def receive_json(sock: socket.socket) -> dict[str, Any]:
    kind, payload = receive(sock)
    if kind != JSON:
        raise WireClosed(f"expected a JSON frame, got {kind!r}")
    import json

    obj = json.loads(payload)
    if not isinstance(obj, dict):
        raise WireClosed("expected a JSON object")
    return obj


def encode_error(exc: BaseException) -> dict[str, Any]:
    """A remoteenv error as data: its class name, message and attributes."""
    attrs = {k: v for k, v in vars(exc).items() if isinstance(v, (str, int, float, bool, type(None)))}
    return {"class": type(exc).__name__, "message": str(exc), "attrs": attrs}


def decode_error(data: dict[str, Any]) -> Exception:
    """The same error again, of the same class (RemoteenvError for a class this side lacks)."""
    from remoteenv import errors

    cls = getattr(errors, str(data.get("class")), None)
    if not (isinstance(cls, type) and issubclass(cls, errors.RemoteenvError)):
        cls = errors.RemoteenvError
    exc = cls.__new__(cls)
    Exception.__init__(exc, str(data.get("message", "")))
    exc.__dict__.update(data.get("attrs") or {})
    return exc


def splice(a: Any, b: Any) -> None:
    """Copy bytes both ways between two sockets (or a socket and an SSH channel) until both sides
    have finished sending; a side that finishes has the other's write side shut, as TCP does."""
    import select
    import socket

    open_ends = {a: b, b: a}
    try:
        while open_ends:
            readable, _, _ = select.select(list(open_ends), [], [], 60)
            for source in readable:
                data = source.recv(65536)
                target = open_ends[source]
                if data:
                    target.sendall(data)
                    continue
                del open_ends[source]
                try:
                    if hasattr(target, "shutdown_write"):
                        target.shutdown_write()  # an SSH channel: EOF to the host's side
                    else:
                        target.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
    except OSError:
        pass


def stop_listening(listener: socket.socket) -> None:
    """Close a listening socket for good: shutdown first, or a thread blocked in accept() keeps
    taking connections on it (close alone does not wake it on Linux)."""
    import socket

    for stop in (lambda: listener.shutdown(socket.SHUT_RDWR), listener.close):
        try:
            stop()
        except OSError:
            pass
