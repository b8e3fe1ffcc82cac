"""The connection keeper's parts that need no host: persist times, the wire format, splicing."""

from __future__ import annotations

import json
import socket
import struct
import threading

import pytest

from remoteenv import errors, keeper
from remoteenv.inventory.model import Host
from remoteenv.keeper import client, wire
from remoteenv.transport.options import ConnectOptions


@pytest.mark.parametrize(("value", "seconds"), [
    ("yes", 0.0), ("no", None), (None, None), ("10m", 600.0), ("1h30m", 5400.0), ("90", 90.0), ("2h", 7200.0),
    ("0", 0.0), ("bogus", None), ("10x", None),
])
def test_control_persist_reads_as_ssh_reads_it(value, seconds):
    assert keeper.parse_persist(value) == seconds


def test_an_error_crosses_the_wire_as_itself():
    sent = errors.HostKeyUnknown("gpu-box", "ssh-ed25519", "SHA256:abc")
    back = wire.decode_error(wire.encode_error(sent))
    assert type(back) is errors.HostKeyUnknown
    assert str(back) == str(sent) and back.hint == sent.hint and back.exit_code == errors.EXIT_CONNECT
    stranger = wire.decode_error({"class": "os", "message": "no", "attrs": {}})
    assert type(stranger) is errors.RemoteenvError and str(stranger) == "no"


def test_frames_round_trip_and_an_oversized_one_is_refused():
    a, b = socket.socketpair()
    with a, b:
        wire.send_json(a, {"op": "ping", "n": 1})
        wire.send(a, wire.OUTPUT, "héllo".encode())
        assert wire.receive_json(b) == {"op": "ping", "n": 1}
        assert wire.receive(b) == (wire.OUTPUT, "héllo".encode())
        a.sendall(struct.pack(">IB", wire.MAX_FRAME + 1, ord("J")))
        with pytest.raises(wire.WireClosed):
            wire.receive(b)
    c, d = socket.socketpair()
    with d:
        c.close()
        with pytest.raises(wire.WireClosed):
            wire.receive(d)


def test_splice_carries_both_ways_and_passes_a_half_close_on():
    left_outer, left_inner = socket.socketpair()
    right_inner, right_outer = socket.socketpair()
    for outer in (left_outer, right_outer):
        outer.settimeout(5)  # a half-close not passed on fails the test instead of hanging it
    carrier = threading.Thread(target=wire.splice, args=(left_inner, right_inner), daemon=True)
    carrier.start()
    payload = bytes(range(256)) * 4096  # 1 MiB: more than the socket buffers hold, so it streams

    def send() -> None:
        left_outer.sendall(payload)
        left_outer.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    got = b""
    while len(got) < len(payload):
        chunk = right_outer.recv(65536)
        assert chunk
        got += chunk
    assert got == payload
    assert right_outer.recv(10) == b""  # the half-close arrived
    sender.join(5)
    right_outer.sendall(b"answer")
    right_outer.shutdown(socket.SHUT_WR)
    assert left_outer.recv(100) == b"answer"
    carrier.join(5)
    assert not carrier.is_alive()
    for s in (left_outer, left_inner, right_inner, right_outer):
        s.close()


def test_reuse_is_on_unless_turned_off(monkeypatch):
    host = Host(name="h", hostname="h")
    monkeypatch.delenv("REMOTEENV_NO_REUSE", raising=False)
    assert client.wanted(host, ConnectOptions())
    assert not client.wanted(host, ConnectOptions(reuse=False))
    assert not client.wanted(Host(name="h", hostname="h", vars={"connection_reuse": False}), ConnectOptions())
    monkeypatch.setenv("REMOTEENV_NO_REUSE", "1")
    assert not client.wanted(host, ConnectOptions())
    monkeypatch.setenv("REMOTEENV_NO_REUSE", "0")
    assert client.wanted(host, ConnectOptions())


def test_no_keeper_no_connection_when_the_socket_path_is_too_long(monkeypatch, tmp_path):
    monkeypatch.setenv("REMOTEENV_STATE_DIR", str(tmp_path / ("x" * 120)))
    assert client.dial(spawn=True) is None


def test_a_command_goes_on_when_the_first_dial_reaches_the_keeper_that_is_dying(monkeypatch):
    """A killed keeper's socket takes a connection while the kernel tears the process down, then
    resets it: the command dials again (a new keeper) instead of failing the host."""
    served: list[dict] = []

    def keeper_that_answers(sock: socket.socket) -> None:
        while True:
            try:
                request = wire.receive_json(sock)
            except (wire.WireClosed, OSError):
                return
            served.append(request)
            if request["op"] == "open":
                wire.send_json(sock, {"ok": True, "session": "new"})
            elif request["op"] == "run":
                wire.send_json(sock, {"ok": True, "result": {"exited": 0, "stdout": "again\n", "stderr": "",
                                                              "duration": 0.0}})
            else:
                wire.send_json(sock, {"ok": True})

    def dying() -> socket.socket:
        ours, theirs = socket.socketpair()
        theirs.close()  # reached, then reset
        return ours

    def alive() -> socket.socket:
        ours, theirs = socket.socketpair()
        threading.Thread(target=keeper_that_answers, args=(theirs,), daemon=True).start()
        return ours

    dials = iter([dying, dying, alive])
    monkeypatch.setattr(client, "dial", lambda spawn=True: next(dials)())
    host = Host(name="h", hostname="h")
    request = {"op": "open", "marker": "m" * 32}
    first = dying()  # the keeper that was killed mid-command
    conn = client.KeptConnection(host, first, {"session": "old"}, request, ConnectOptions())
    result = conn.run("true")
    assert result.stdout == "again\n"
    # Opened anew, what the dead keeper ran reaped by its marker, then the command sent again.
    assert [r["op"] for r in served] == ["open", "reap", "run"]
    assert served[1]["marker"] == "m" * 32 and served[0]["marker"] != "m" * 32
    assert served[2]["session"] == "new"


def test_a_fleet_dialling_at_once_starts_one_keeper(monkeypatch, tmp_path):
    """Every host of a fleet dials when none runs yet: one start-up, not one per host."""
    monkeypatch.setenv("REMOTEENV_STATE_DIR", str(tmp_path))
    path = keeper.socket_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    started: list[list[str]] = []
    listeners: list[socket.socket] = []

    def start_keeper(argv, **kwargs):  # a keeper that takes a while to listen, as a real one does
        started.append(argv)

        def answer(conn: socket.socket) -> None:  # pings, as a keeper answers them
            try:
                while wire.receive_json(conn).get("op") == "ping":
                    wire.send_json(conn, {"ok": True})
            except (OSError, wire.WireClosed):
                pass

        def serve(listener: socket.socket) -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                listeners.append(conn)
                threading.Thread(target=answer, args=(conn,), daemon=True).start()

        def listen() -> None:
            listener = socket.socket(socket.AF_UNIX)
            listener.bind(str(path))
            listener.listen(64)
            listeners.append(listener)
            threading.Thread(target=serve, args=(listener,), daemon=True).start()

        threading.Timer(0.2, listen).start()

    monkeypatch.setattr(client.subprocess, "Popen", start_keeper)
    socks: list = []
    threads = [threading.Thread(target=lambda: socks.append(client.dial())) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert len(started) == 1 and started[0][-1] == str(path)
        assert len(socks) == 20 and all(s is not None for s in socks)
    finally:
        for s in [*socks, *listeners]:
            if s is not None:
                if s in listeners:
                    wire.stop_listening(s)
                s.close()


@pytest.mark.parametrize("value", [
    {}, {"op": "probe", "name": "gpu-box", "inventory": None, "reuse": True, "off": False},
    {"cwd": "/home/ada/d\u00e9p\u00f4t \"q\" \\ \t\n\x00\x1f\x7f", "surrogate": "/tmp/\udcff\udc80",
     "env": {"HOME": "/root", "SHELL": None, "LANG": "\u65e5\u672c\U0001f600"}},
])
def test_the_fast_probes_request_is_what_json_would_write(value):
    from remoteenv.cli import fast

    assert fast.to_json(value) == json.dumps(value, separators=(",", ":"))


def test_the_fast_probe_finds_the_keepers_socket_where_the_keeper_listens(monkeypatch, tmp_path):
    for state in (None, str(tmp_path / "state")):
        if state is None:
            monkeypatch.delenv("REMOTEENV_STATE_DIR", raising=False)
            monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
        else:
            monkeypatch.setenv("REMOTEENV_STATE_DIR", state)
        assert keeper.socket_file() == str(keeper.socket_path())
