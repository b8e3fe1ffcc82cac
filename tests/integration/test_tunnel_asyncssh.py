"""The asyncssh tunnel backend against real hosts: forwards carry real HTTP end to end, and it is as strict
as ssh (known host keys only, keys only), notices a dead link, and leaves no port or thread behind."""

from __future__ import annotations

import dataclasses
import http.client
import os
import random
import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from testbed import needs_netns

from remoteenv import api
from remoteenv.inventory import load_inventory, resolve_many
from remoteenv.tunnel import LOCAL_HOST, Forward, TunnelError, free_local_port, listening
from remoteenv.tunnel.asyncssh_backend import AsyncSSHBackend

pytestmark = pytest.mark.integration

OPEN_TIMEOUT = 30.0
# Variables that would point remoteenv at other files than the testbed client's.
OVERRIDES = ("REMOTEENV_KNOWN_HOSTS", "REMOTEENV_GLOBAL_KNOWN_HOSTS", "REMOTEENV_SSH_CONFIG", "REMOTEENV_INVENTORY",
             "REMOTEENV_CONNECT_TIMEOUT", "REMOTEENV_STATE_DIR", "REMOTEENV_CONFIG_DIR")

UNIX_HTTP_SERVER = """\
import http.server, socketserver, sys

path, folder = sys.argv[1], sys.argv[2]


class Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=folder, **kwargs)

    def address_string(self):
        return "unix"  # a Unix socket's peer has no address


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


with Server(path, Handler) as server:
    server.serve_forever()
"""


@dataclass
class Served:
    remote: str  # the Forward's remote end: "127.0.0.1:PORT" or the socket's path
    blob: bytes  # what GET /blob returns


@pytest.fixture
def as_client(monkeypatch) -> Callable:
    """as_client(bed): this process sees what bed's client side sees (HOME, so its ssh config and
    known_hosts, no agent), as the `remoteenv` command would run with bed.client.env()."""

    def use(bed) -> None:
        env = bed.client.env()
        for name in [*(set(os.environ) - set(env)), *OVERRIDES]:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HOME", env["HOME"])

    return use


@pytest.fixture
def tunnel() -> Iterator[Callable[..., AsyncSSHBackend]]:
    """tunnel(name, forwards, **host_changes): a backend for the host as remoteenv resolves it; closed after."""
    made: list[AsyncSSHBackend] = []

    def make(name: str, forwards: list[Forward], **host_changes) -> AsyncSSHBackend:
        inventory = load_inventory(None)
        [host] = resolve_many(inventory, [name])
        backend = AsyncSSHBackend(dataclasses.replace(host, **host_changes), forwards, api.connect_options(inventory))
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


@pytest.fixture
def web() -> Iterator[Callable[..., Served]]:
    """web(host, unix=False): an HTTP server on the host's loopback (or on a Unix socket in a 0700
    folder of its home) serving random bytes at /blob; stopped after the test."""
    started: list[tuple] = []

    def start(host, unix: bool = False) -> Served:
        folder = f"tunnel-web-{secrets.token_hex(4)}"
        host.run(f"mkdir -m 700 ~/{folder} ~/{folder}/www && head -c 300000 /dev/urandom > ~/{folder}/www/blob")
        started.append((host, folder))
        if unix:
            sock = host.home / folder / "http.sock"
            # Written by the host user, who then owns it (the home is on the shared filesystem too).
            host.run(f"cat > ~/{folder}/server.py <<'EOF'\n{UNIX_HTTP_SERVER}EOF")
            host.run(f"nohup python3 ~/{folder}/server.py {sock} ~/{folder}/www >/dev/null 2>&1 & "
                     f"echo $! > ~/{folder}/pid")
            check = f"s = socket.socket(socket.AF_UNIX); s.connect({str(sock)!r})"
            remote = str(sock)
        else:
            port = int(host.run("python3 -c 'import socket; s = socket.socket(); s.bind((\"127.0.0.1\", 0)); "
                                "print(s.getsockname()[1])'").stdout)
            host.run(f"nohup python3 -m http.server --bind 127.0.0.1 {port} --directory ~/{folder}/www "
                     f">/dev/null 2>&1 & echo $! > ~/{folder}/pid")
            check = f"socket.create_connection(('127.0.0.1', {port}), 1)"
            remote = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while host.run(f'python3 -c "import socket; {check}"', check=False).returncode != 0:
            assert time.monotonic() < deadline, "the HTTP server on the host did not start"
            time.sleep(0.1)
        return Served(remote, (host.home / folder / "www" / "blob").read_bytes())

    yield start
    for host, folder in started:
        host.run(f"kill $(cat ~/{folder}/pid) 2>/dev/null; rm -rf ~/{folder}", check=False)


def some_free_port() -> int:
    return free_local_port(random.randint(20000, 30000))


def get(port: int) -> bytes:
    conn = http.client.HTTPConnection(LOCAL_HOST, port, timeout=20)  # no proxy from the environment
    try:
        conn.request("GET", "/blob")
        response = conn.getresponse()
        assert response.status == 200
        return response.read()
    finally:
        conn.close()


def can_listen(port: int) -> bool:
    """Could a server take the port now? With SO_REUSEADDR, as servers (and the next open) bind:
    the forwarded connections' TIME_WAIT must not count, a listener left behind must."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOCAL_HOST, port))
            sock.listen()
        except OSError:
            return False
    return True


def ssh_connections(host) -> int:
    """Established TCP connections from this machine to the host's sshd (IPv4, as the testbed's are)."""
    remote = f"{socket.inet_aton(host.address)[::-1].hex().upper()}:{host.port:04X}"
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for line in lines if line.split()[2] == remote and line.split()[3] == "01")


def settles(check: Callable[[], bool], seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def tunnel_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("remoteenv-tunnel-") and t.is_alive()]


def test_a_tcp_forward_carries_http_and_close_frees_the_port(testbed, as_client, tunnel, web):
    host = testbed.host("h01")
    as_client(testbed)
    served = web(host)
    local = some_free_port()
    before = ssh_connections(host)
    backend = tunnel(host.name, [Forward(local, served.remote, "web")])
    backend.open(OPEN_TIMEOUT)
    assert listening(local)
    assert ssh_connections(host) == before + 1
    assert get(local) == served.blob
    assert get(local) == served.blob  # each connection gets a channel of its own
    assert backend.wait(0.2) is False and backend.pid is None
    backend.close()
    assert backend.wait(0) is True
    assert backend.last_error == ""  # closed on purpose
    assert not listening(local) and can_listen(local)
    assert settles(lambda: ssh_connections(host) == before), "the SSH connection outlived close()"
    assert tunnel_threads() == []
    backend.close()  # a second close is harmless


def test_a_unix_socket_forward_carries_http(testbed, as_client, tunnel, web):
    host = testbed.host("h02")
    as_client(testbed)
    served = web(host, unix=True)
    assert served.remote.startswith(str(host.home))
    local = some_free_port()
    backend = tunnel(host.name, [Forward(local, served.remote, "socket")])
    backend.open(OPEN_TIMEOUT)
    assert get(local) == served.blob
    backend.close()
    assert not listening(local) and can_listen(local)


def test_an_unknown_host_key_is_refused_and_nothing_listens(make_testbed, as_client, tunnel):
    bed = make_testbed(1, known=False)
    host = bed.hosts[0]
    as_client(bed)
    local = some_free_port()
    backend = tunnel(host.name, [Forward(local, "127.0.0.1:9")])
    with pytest.raises(TunnelError) as refused:
        backend.open(OPEN_TIMEOUT)
    assert refused.value.message.startswith(f"{host.name}: host key not known"), refused.value.message
    assert "\n" not in refused.value.message
    assert f"remoteenv probe {host.name} --accept-new-host-key" in refused.value.hint
    assert backend.last_error == refused.value.message and backend.wait(0) is True
    assert not listening(local) and tunnel_threads() == []
    assert bed.client.known_hosts.read_text() == ""  # nothing was recorded on the way
    # The same host with its key known opens: the refusal was the key's.
    bed.write_known_hosts()
    backend.open(OPEN_TIMEOUT)
    assert listening(local)
    backend.close()
    # A key that changed since it was recorded is refused as well.
    host.regenerate_host_key()
    with pytest.raises(TunnelError) as changed:
        backend.open(OPEN_TIMEOUT)
    assert changed.value.message.startswith(f"{host.name}: HOST KEY CHANGED"), changed.value.message
    assert not listening(local)


KNOWN_HOSTS_CASES = {  # what OpenSSH decides for each (test_known_hosts_files asks it): the tunnel agrees
    "odd lines, then the key": "ok",  # OpenSSH skips lines it cannot read; asyncssh's own reader stops there
    "hashed": "ok",
    "revoked": "HOST KEY REVOKED",
    "a key of another type on record": "HOST KEY CHANGED",  # not a reset: the host's key is shown and refused
    "cert-authority only": "host key not known",
}


@pytest.mark.parametrize("case", list(KNOWN_HOSTS_CASES))
def test_known_hosts_lines_count_as_they_do_for_openssh(case, testbed, as_client, tunnel, tmp_path):
    host = testbed.host("h03")
    as_client(testbed)
    name, key = host.host_key_line.split(" ", 1)
    other = tmp_path / "other_rsa"
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(other)], check=True)
    other_key = " ".join(other.with_name("other_rsa.pub").read_text().split()[:2])
    lines = {
        "odd lines, then the key": [f"@bogus {name} {key}", name, host.host_key_line],
        "hashed": [host.host_key_line],
        "revoked": [host.host_key_line, f"@revoked {name} {key}"],
        "a key of another type on record": [f"{name} {other_key}"],
        "cert-authority only": [f"@cert-authority * {key}"],
    }[case]
    known = tmp_path / "known_hosts"
    known.write_text("\n".join(lines) + "\n")
    if case == "hashed":
        subprocess.run(["ssh-keygen", "-H", "-f", str(known)], check=True, capture_output=True)
        assert name not in known.read_text()
    local = some_free_port()
    backend = tunnel(host.name, [Forward(local, "127.0.0.1:9")], user_known_hosts_file=str(known),
                     global_known_hosts_file="/dev/null")
    if KNOWN_HOSTS_CASES[case] == "ok":
        backend.open(OPEN_TIMEOUT)
        assert listening(local)
        return
    with pytest.raises(TunnelError) as refused:
        backend.open(OPEN_TIMEOUT)
    assert refused.value.message.startswith(f"{host.name}: {KNOWN_HOSTS_CASES[case]}"), refused.value.message
    assert not listening(local)


def test_a_dead_link_is_noticed_and_the_tunnel_opens_again(make_testbed, as_client, tunnel, web):
    bed = make_testbed(1)
    needs_netns(bed)  # local mode's cut stops only sshd's listener: a session would live on
    host = bed.hosts[0]
    bed.client.ssh_config.write_text("Host *\n  ServerAliveInterval 1\n  ServerAliveCountMax 2\n"
                                     + bed.client.ssh_config.read_text())
    as_client(bed)
    served = web(host)
    local = some_free_port()
    backend = tunnel(host.name, [Forward(local, served.remote)])
    assert (backend.host.server_alive_interval, backend.host.server_alive_count_max) == (1, 2)
    backend.open(OPEN_TIMEOUT)
    assert get(local) == served.blob
    # Idle for longer than interval x (count + 1): answered keepalives keep a live link up.
    assert backend.wait(3.5) is False
    host.cut_link()
    try:
        started = time.monotonic()
        assert backend.wait(10) is True
        took = time.monotonic() - started
        assert took < 5.5, f"the dead link was noticed after {took:.1f}s"
        assert "keepalive" in backend.last_error, backend.last_error
        assert not listening(local)
    finally:
        host.restore_link()
    backend.open(OPEN_TIMEOUT)
    assert backend.last_error == ""
    assert get(local) == served.blob


def test_a_busy_local_port_is_a_tunnel_error_and_nothing_is_left(testbed, as_client, tunnel):
    host = testbed.host("h02")
    as_client(testbed)
    free = some_free_port()
    with socket.socket() as taken:
        taken.bind((LOCAL_HOST, 0))
        taken.listen()
        busy = taken.getsockname()[1]
        backend = tunnel(host.name, [Forward(free, "127.0.0.1:9"), Forward(busy, "127.0.0.1:9")])
        with pytest.raises(TunnelError) as refused:
            backend.open(OPEN_TIMEOUT)
    assert refused.value.message.startswith(f"{host.name}: cannot listen on {LOCAL_HOST}:{busy}")
    assert "--local-port" in refused.value.hint
    assert not listening(free)  # the forward that did open went with the connection
    assert backend.wait(0) is True and tunnel_threads() == []


def test_only_keys_the_host_accepts_log_in(testbed, as_client, tunnel, tmp_path):
    host = testbed.host("h03")
    as_client(testbed)
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    local = some_free_port()
    refused = tunnel(host.name, [Forward(local, "127.0.0.1:9")], identity_files=[str(stranger)],
                     identities_only=True)
    with pytest.raises(TunnelError) as denied:
        refused.open(OPEN_TIMEOUT)
    assert denied.value.message.startswith(f"{host.name}: permission denied for {host.user}@"), denied.value.message
    assert f"remoteenv hosts {host.name}" in denied.value.hint
    assert not listening(local)
    # Without IdentitiesOnly the default key under HOME's ~/.ssh is offered too, and it is the host's.
    assert Path(os.environ["HOME"], ".ssh", "id_ed25519").is_file()
    accepted = tunnel(host.name, [Forward(local, "127.0.0.1:9")], identity_files=[str(stranger)],
                      identities_only=False)
    accepted.open(OPEN_TIMEOUT)
    assert listening(local)


def test_proxy_jump_goes_through_the_hop(testbed, as_client, tunnel, web):
    target, hop = testbed.host("h01"), testbed.host("h02")
    as_client(testbed)
    served = web(target)
    local = some_free_port()
    through = tunnel(target.name, [Forward(local, served.remote)], proxy_jump=hop.name)
    through.open(OPEN_TIMEOUT)
    assert get(local) == served.blob
    through.close()
    # The hop is really on the way: one that refuses connections stops the tunnel, named as a jump host.
    port = 1 if testbed.mode == "netns" else some_free_port()
    broken = tunnel(target.name, [Forward(local, served.remote)], proxy_jump=f"{hop.user}@{hop.address}:{port}")
    with pytest.raises(TunnelError) as refused:
        broken.open(OPEN_TIMEOUT)
    assert refused.value.message.startswith(f"{target.name}: jump host {hop.address}: connection refused"), \
        refused.value.message
    assert not listening(local)


def test_an_open_that_hangs_gives_up_in_time_or_when_closed_from_another_thread(make_testbed, as_client, tunnel):
    bed = make_testbed(1, down={"h01": "cut"})
    needs_netns(bed)  # local mode's cut host still accepts TCP connections
    host = bed.hosts[0]
    as_client(bed)
    local = some_free_port()
    backend = tunnel(host.name, [Forward(local, "127.0.0.1:9")])
    started = time.monotonic()
    with pytest.raises(TunnelError) as late:
        backend.open(2)
    assert time.monotonic() - started < 4
    assert late.value.message == f"{host.name}: the tunnel did not open within 2s"
    assert tunnel_threads() == []
    failed: list[BaseException] = []

    def opener() -> None:
        try:
            backend.open(OPEN_TIMEOUT)
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=opener)
    thread.start()
    time.sleep(0.5)
    started = time.monotonic()
    backend.close()
    thread.join(10)
    assert not thread.is_alive() and time.monotonic() - started < 5
    assert len(failed) == 1 and isinstance(failed[0], TunnelError), failed
    assert failed[0].message == f"{host.name}: the tunnel was closed while it opened"
    assert not listening(local) and tunnel_threads() == []
