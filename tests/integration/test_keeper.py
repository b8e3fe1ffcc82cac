"""The connection keeper (remoteenv.keeper): one sign-in per host shared by every command."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from cli_runner import remoteenv

pytestmark = pytest.mark.integration


def kept_env(bed) -> dict[str, str]:
    env = bed.client.env()
    env.pop("REMOTEENV_NO_REUSE", None)
    return env


def keeper_dir(bed) -> Path:
    return bed.client.home / ".local/state/remoteenv/keeper"


def sign_ins(host) -> int:
    return host.sshd_log().count("Accepted publickey")


def keeper_pid(bed) -> int:
    return int((keeper_dir(bed) / "keeper.pid").read_text())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


@pytest.fixture(scope="module")
def bed():
    from conftest import _make

    made = _make(2)
    # Quick dead-peer detection for the link-cut test (first value wins: the host blocks set none).
    with open(made.client.ssh_config, "a") as fh:
        fh.write("\nHost *\n  ServerAliveInterval 1\n  ServerAliveCountMax 2\n")
    yield made
    remoteenv("disconnect", env=kept_env(made))
    made.close()


@pytest.fixture
def fresh(bed):
    """Every test starts with no keeper."""
    remoteenv("disconnect", env=kept_env(bed))
    yield bed
    remoteenv("disconnect", env=kept_env(bed))


def apply_running(playbook: Path, host, env: dict[str, str], seen: str) -> subprocess.Popen:
    """`remoteenv apply PLAYBOOK HOST --json` started, once `seen` shows in the host's process list."""
    proc = subprocess.Popen([sys.executable, "-m", "remoteenv", "apply", str(playbook), host.name, "--json"],
                            env={**env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while seen not in host.processes(check=False):
        assert time.monotonic() < deadline and proc.poll() is None, "\n".join(proc.communicate())
        time.sleep(0.1)
    return proc


def write_playbook(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def test_probe_plan_and_apply_share_one_sign_in(fresh, tmp_path):
    bed = fresh
    host, env = bed.host("h01"), kept_env(bed)
    before = sign_ins(host)
    playbook = write_playbook(tmp_path, """
        steps:
          - shell: {command: touch ~/.rt-kept, creates: ~/.rt-kept}
        """)
    for args in (("probe", "h01", "--json"), ("plan", str(playbook), "h01"), ("apply", str(playbook), "h01"),
                 ("apply", str(playbook), "h01"), ("probe", "h01")):
        result = remoteenv(*args, env=env)
        assert result.code == 0, (args, result.out, result.err)
    assert sign_ins(host) - before == 1, host.sshd_log()[-2000:]

    listed = remoteenv("connections", "--json", env=env).json()
    assert [c["name"] for c in listed["connections"]] == ["h01"]
    assert listed["connections"][0]["alive"] is True

    # Turned off, every command signs in on its own.
    assert remoteenv("--no-reuse", "probe", "h01", "--json", env=env).code == 0
    assert sign_ins(host) - before == 2

    closed = remoteenv("disconnect", "h01", "--json", env=env).json()
    assert closed["closed"] == ["h01"]
    assert remoteenv("probe", "h01", "--json", env=env).code == 0
    assert sign_ins(host) - before == 3


def test_the_keeper_serves_only_its_own_user(fresh):
    bed = fresh
    env = kept_env(bed)
    assert remoteenv("probe", "h02", "--json", env=env).code == 0
    folder = keeper_dir(bed)
    sock = folder / "keeper.sock"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    assert stat.S_IMODE((folder / "keeper.log").stat().st_mode) == 0o600

    other = bed.host("h02").user  # a Unix user of this machine that is not us
    attempt = textwrap.dedent(f"""
        import socket, struct, sys
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect({str(sock)!r})
        except OSError as exc:
            print("refused", exc.errno); sys.exit(0)
        body = b'{{"op":"list"}}'
        try:
            s.sendall(struct.pack(">IB", len(body), ord("J")) + body)
            print("answered" if s.recv(100) else "closed")
        except ConnectionError:
            print("closed")
    """)

    def as_other() -> str:
        proc = subprocess.run(["runuser", "-u", other, "--", "/usr/bin/python3", "-c", attempt],
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    assert as_other().startswith("refused")
    # With the folder and socket opened up (a mistake, a careless chmod), the keeper itself still
    # checks who is calling and hangs up on anyone else.
    chain = [p for p in [sock.parent, *sock.parents] if str(p).startswith(str(bed.dir))]
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in [sock, *chain]}
    try:
        for path in chain:
            os.chmod(path, modes[path] | 0o711)
        os.chmod(sock, 0o666)
        assert as_other() == "closed"
    finally:
        for path, mode in modes.items():
            os.chmod(path, mode)
    assert remoteenv("connections", "--json", env=env).json()["connections"]


@pytest.fixture
def crowd():
    """4000 more processes on the machine (a busy host: the test hosts share its process table).
    What the dead keeper left running is found among them by its marker, in time."""
    procs = [subprocess.Popen(["sleep", "600"]) for _ in range(4000)]
    yield
    for proc in procs:
        proc.kill()
    for proc in procs:
        proc.wait()


def test_a_keeper_killed_mid_command_is_replaced_and_the_command_succeeds(fresh, crowd, tmp_path):
    bed = fresh
    host, env = bed.host("h01"), kept_env(bed)
    assert remoteenv("probe", "h01", "--json", env=env).code == 0
    first = keeper_pid(bed)
    playbook = write_playbook(tmp_path, """
        steps:
          - shell: {command: "sleep 4; echo done >> ~/.rt-killed", creates: ~/.rt-killed-marker}
          - shell: {command: touch ~/.rt-killed-marker, creates: ~/.rt-killed-marker}
        """)
    host.run("rm -f ~/.rt-killed ~/.rt-killed-marker")
    proc = apply_running(playbook, host, env, "sleep 4")
    os.kill(first, signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err  # a string: pytest shows it whole
    assert keeper_pid(bed) != first and alive(keeper_pid(bed))
    # Once: what the dead keeper had started was stopped before the command went again.
    assert host.run("cat ~/.rt-killed").stdout.split() == ["done"]
    assert host.run("test -e ~/.rt-killed-marker", check=False).returncode == 0
    ends = [json.loads(line) for line in out.splitlines() if '"host_end"' in line]
    assert ends and ends[-1]["status"] == "changed", out


def test_a_dropped_connection_is_replaced_without_a_word(fresh):
    bed = fresh
    host, env = bed.host("h02"), kept_env(bed)
    assert remoteenv("probe", "h02", "--json", env=env).code == 0
    before = sign_ins(host)
    # The host ends the session (sshd restarted, a NAT timeout, a reboot): its per-login sshd dies.
    host.run("pkill -KILL -u $(id -u) -x sshd || true", check=False)
    deadline = time.monotonic() + 20
    while True:
        rows = remoteenv("connections", "--json", env=env).json()["connections"]
        if not any(r["name"] == "h02" and r["alive"] for r in rows):
            break
        assert time.monotonic() < deadline, rows
        time.sleep(0.2)
    result = remoteenv("probe", "h02", "--json", env=env)
    assert result.code == 0, result.err
    assert sign_ins(host) == before + 1


def test_ctrl_c_in_a_kept_command_stops_it_on_the_host(fresh, tmp_path):
    bed = fresh
    host, env = bed.host("h01"), kept_env(bed)
    playbook = write_playbook(tmp_path, """
        steps:
          - shell: {command: "sleep 306", creates: ~/.never}
        """)
    proc = apply_running(playbook, host, env, "sleep 306")
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    deadline = time.monotonic() + 10
    while "sleep 306" in host.processes(check=False):
        assert time.monotonic() < deadline, "the command kept running on the host"
        time.sleep(0.2)
    # The connection itself stays for the next command.
    assert any(r["name"] == "h01" for r in remoteenv("connections", "--json", env=env).json()["connections"])


def test_the_kept_tunnel_backend_carries_http_over_the_kept_connection(fresh):
    import hashlib
    import urllib.request

    bed = fresh
    host, env = bed.host("h02"), kept_env(bed)
    blob = os.urandom(3 << 20)
    (host.home / "www").mkdir(exist_ok=True)
    (host.home / "www" / "blob").write_bytes(blob)
    os.chown(host.home / "www", host.home.stat().st_uid, host.home.stat().st_gid)
    host.run("cd ~/www && setsid python3 -m http.server 18081 --bind 127.0.0.1 >/dev/null 2>&1 </dev/null &")
    try:
        assert remoteenv("probe", "h02", "--json", env=env).code == 0
        before = sign_ins(host)
        opened = remoteenv("tunnel", "h02", "--service", "18081", "--backend", "kept", "--detach", "--json",
                           env=env)
        assert opened.code == 0, opened.err
        port = opened.json()["forwards"][0]["local_port"]
        listed = remoteenv("tunnels", "--json", env=env).json()
        assert [t["backend"] for t in listed if t["host"] == "h02"] == ["kept"]
        # The keeper itself listens: no process of the tunnel's own.
        assert [t["pid"] for t in listed if t["host"] == "h02"] == [keeper_pid(bed)]
        deadline = time.monotonic() + 20
        while True:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/blob", timeout=10).read()
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert hashlib.sha256(body).digest() == hashlib.sha256(blob).digest()
        # Ten requests at once, each a connection of its own through the one kept SSH connection.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(10) as pool:
            sizes = list(pool.map(lambda _: len(urllib.request.urlopen(
                f"http://127.0.0.1:{port}/blob", timeout=30).read()), range(10)))
        assert sizes == [len(blob)] * 10
        assert sign_ins(host) == before, "the tunnel signed in again"
        assert remoteenv("down", "h02", env=env).code == 0
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/blob", timeout=5)
        assert remoteenv("connections", "--json", env=env).json()["tunnels"] == []
    finally:
        host.run("pkill -f 'http.server 18081' || true", check=False)


def test_a_host_that_asks_for_a_code_asks_once_across_probe_apply_and_tunnel(tmp_path):
    """AuthenticationMethods publickey,keyboard-interactive: the code is typed once per connection."""
    import urllib.request

    from conftest import _make

    bed = _make(1, auth={"h01": "2fa"})
    host, env = bed.hosts[0], kept_env(bed)
    try:
        # The code, given as a person would type it (REMOTEENV_ASKPASS stands in for the terminal).
        answer = tmp_path / "askpass"
        answer.write_text(f"#!/bin/sh\necho \"$1\" >> {tmp_path}/asked\ncat {host.code_file}\n")
        answer.chmod(0o755)
        env["REMOTEENV_ASKPASS"] = str(answer)
        without = remoteenv("--no-reuse", "probe", "h01", "--json", env={**env, "REMOTEENV_ASKPASS": "/bin/false"})
        assert without.code == 3 and "code" in without.err, without.err

        assert remoteenv("probe", "h01", "--json", env=env).code == 0
        assert host.prompts_answered() == 1  # the try above gave no answer at all
        asked = (tmp_path / "asked").read_text().splitlines()
        assert len(asked) == 1 and asked[0].startswith("h01: ")
        host.set_code("000000")  # the code moves on: signing in again now would need the new one

        playbook = write_playbook(tmp_path, """
            steps:
              - shell: {command: touch ~/.rt-2fa, creates: ~/.rt-2fa}
            """)
        assert remoteenv("apply", str(playbook), "h01", env=env).code == 0
        host.run("setsid python3 -m http.server 18082 --bind 127.0.0.1 >/dev/null 2>&1 </dev/null &")
        opened = remoteenv("tunnel", "h01", "--service", "18082", "--detach", "--json", env=env)
        assert opened.code == 0, opened.err
        listed = remoteenv("tunnels", "--json", env=env).json()
        assert [t["backend"] for t in listed] == ["kept"]  # ssh -L would have asked again
        port = opened.json()["forwards"][0]["local_port"]
        deadline = time.monotonic() + 20
        while True:
            try:
                status = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).status
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert status == 200
        assert host.prompts_answered() == 1
        assert len((tmp_path / "asked").read_text().splitlines()) == 1
        assert remoteenv("down", "h01", env=env).code == 0
    finally:
        host.run("pkill -f 'http.server 18082' || true", check=False)
        remoteenv("disconnect", env=env)
        bed.close()


def test_a_kept_tunnel_comes_back_after_the_link_is_cut(fresh):
    import urllib.request

    bed = fresh
    host, env = bed.host("h02"), kept_env(bed)
    host.run("setsid python3 -m http.server 18083 --bind 127.0.0.1 >/dev/null 2>&1 </dev/null &")

    def get(port: int, within: float) -> int:
        deadline = time.monotonic() + within
        while True:
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=3).status
            except OSError:
                assert time.monotonic() < deadline, "the tunnel did not answer"
                time.sleep(0.3)

    try:
        opened = remoteenv("tunnel", "h02", "--service", "18083", "--detach", "--json", env=env)
        assert opened.code == 0, opened.err
        port = opened.json()["forwards"][0]["local_port"]
        assert get(port, 20) == 200
        before = sign_ins(host)
        host.cut_link()
        time.sleep(5)  # long enough for the keepalives to give the connection up
        host.restore_link()
        assert get(port, 60) == 200
        assert sign_ins(host) == before + 1  # the dropped connection was replaced, by itself
    finally:
        remoteenv("down", "h02", env=env)
        host.run("pkill -f 'http.server 18083' || true", check=False)


def test_a_kept_probe_answers_without_loading_the_cli_and_says_the_same(fresh, tmp_path):
    bed = fresh
    env = kept_env(bed)
    ordinary = remoteenv("--no-reuse", "probe", "h01", "--json", env=env)
    assert ordinary.code == 0, ordinary.err
    assert remoteenv("probe", "h01", "--json", env=env).code == 0  # the keeper now holds h01
    host = bed.host("h01")
    def kept_copies(then: str) -> str:  # in this user's kept-shell folders (other users' are shut)
        return host.run(f'for d in /tmp/remoteenv-shell-*; do [ -O "$d" ] && {then} "$d"/*; done; true').stdout

    kept_copies("rm -f")  # the kept shell's copies of scripts: the next probe's must come back
    # -S: the standard library and this checkout only (no site-packages, so no dependency, and not
    # the editable install's import hook, which loads pathlib and re itself).
    proc = subprocess.run([sys.executable, "-S", "-X", "importtime", "-m", "remoteenv", "probe", "h01", "--json"],
                          env={**env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    loaded = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time")}
    assert not loaded & {"typer", "rich", "paramiko", "remoteenv.inventory", "remoteenv.paths", "typing", "pathlib",
                         "socket", "json", "re"}, sorted(loaded)

    def comparable(text: str) -> str:  # the same text, but for the free disk space
        return re.sub(r'"disk_free_bytes": \d+', "", text)

    assert comparable(proc.stdout) == comparable(ordinary.out)
    # It went to the connection's kept shell, not to an SSH session of its own.
    from remoteenv.facts import probe_script

    digest = hashlib.sha256(probe_script().encode()).hexdigest()
    assert digest in kept_copies("ls"), "the probe did not go to the kept shell"
    # Another environment (here no ssh config: h01 is then just a name) is not answered from the
    # keeper's resolution: the ordinary path finds no such host.
    other = remoteenv("probe", "h01", "--json", env={**env, "REMOTEENV_SSH_CONFIG": str(tmp_path / "none")})
    assert other.code == 3 and other.out == "", (other.out, other.err)


def test_an_idle_connection_closes_after_ssh_configs_control_persist():
    from conftest import _make

    bed = _make(1)
    host, env = bed.hosts[0], kept_env(bed)
    try:
        with open(bed.client.ssh_config, "a") as fh:
            fh.write("\nHost *\n  ControlPersist 2s\n")
        assert remoteenv("probe", "h01", "--json", env=env).code == 0
        listed = remoteenv("connections", "--json", env=env).json()["connections"]
        assert [(c["name"], c["persist_seconds"]) for c in listed] == [("h01", 2.0)]
        deadline = time.monotonic() + 15
        while remoteenv("connections", "--json", env=env).json()["connections"]:
            assert time.monotonic() < deadline, "the idle connection stayed"
            time.sleep(0.5)
        before = sign_ins(host)
        assert remoteenv("probe", "h01", "--json", env=env).code == 0
        assert sign_ins(host) == before + 1  # closed for real: the next command signs in again
    finally:
        remoteenv("disconnect", env=env)
        bed.close()


def test_a_keeper_that_does_not_answer_is_gone_round_and_named(fresh):
    # A stopped keeper (SIGSTOP; a debugger; a stuck process) still accepts connections: the kernel
    # queues them. Commands must not wait for it for ever.
    bed = fresh
    env = kept_env(bed)
    assert remoteenv("probe", "h01", "--json", env=env).code == 0
    pid = keeper_pid(bed)
    os.kill(pid, signal.SIGSTOP)
    try:
        start = time.monotonic()
        fast = remoteenv("probe", "h01", "--json", env=env, timeout=120)
        assert fast.code == 0, fast.err
        assert json.loads(fast.out)["hostname"]
        assert f"the connection keeper (pid {pid}) does not answer" in fast.err and f"kill {pid}" in fast.err
        ordinary = remoteenv("probe", "h01", env=env, timeout=120)
        assert ordinary.code == 0 and ordinary.err.count("does not answer") == 1, ordinary.err
        listed = remoteenv("connections", env=env, timeout=120)
        assert listed.code != 0 and f"error: the connection keeper (pid {pid}) does not answer" in listed.err
        assert "no keeper runs" not in listed.out
        assert time.monotonic() - start < 60
    finally:
        os.kill(pid, signal.SIGCONT)
    assert remoteenv("connections", "--json", env=env).code == 0  # answering again


def test_disconnecting_a_host_ends_its_hosted_tunnel_and_says_so(fresh):
    from remoteenv.tunnel import listening

    bed = fresh
    env = kept_env(bed)
    assert remoteenv("probe", "h01", "--json", env=env).code == 0  # the keeper goes on holding h01
    opened = remoteenv("tunnel", "h02", "--service", "22", "--backend", "kept", "--detach", "--json", env=env)
    assert opened.code == 0, opened.err
    port = opened.json()["forwards"][0]["local_port"]
    [record] = [t for t in remoteenv("tunnels", "--json", env=env).json() if t["host"] == "h02"]
    closed = remoteenv("disconnect", "h02", "--json", env=env)
    assert closed.code == 0 and closed.json()["closed"] == ["h02"] and closed.json()["tunnels"] == [record["id"]]
    assert not listening(port)
    assert [t for t in remoteenv("tunnels", "--json", env=env).json() if t["host"] == "h02"] == []
    assert remoteenv("connections", "--json", env=env).json()["connections"][0]["name"] == "h01"

    # A record of a tunnel the keeper no longer hosts (its host dropped and was given up, say) is
    # not listed as open either.
    opened = remoteenv("tunnel", "h02", "--service", "22", "--backend", "kept", "--detach", "--json", env=env)
    assert opened.code == 0, opened.err
    import socket as sockets

    from remoteenv.keeper import wire
    sock = sockets.socket(sockets.AF_UNIX)
    sock.connect(str(keeper_dir(bed) / "keeper.sock"))
    [record] = [t for t in remoteenv("tunnels", "--json", env=env).json() if t["host"] == "h02"]
    wire.send_json(sock, {"op": "unlisten", "id": record["id"]})
    assert wire.receive_json(sock)["ok"]
    sock.close()
    assert [t for t in remoteenv("tunnels", "--json", env=env).json() if t["host"] == "h02"] == []
    said = remoteenv("disconnect", "h02", env=env)
    assert said.code == 0 and "Closed h02" in said.out


def test_a_second_detached_tunnel_to_the_same_service_is_the_first_one(fresh):
    bed = fresh
    env = kept_env(bed)
    try:
        first = remoteenv("tunnel", "h02", "--service", "22", "--detach", "--json", env=env)
        again = remoteenv("tunnel", "h02", "--service", "22", "--detach", "--json", env=env)
        assert first.code == 0 and again.code == 0, (first.err, again.err)
        assert again.json()["reused"] and not first.json()["reused"]
        assert again.json()["forwards"] == first.json()["forwards"]
        assert "already open" in again.err
        assert len([t for t in remoteenv("tunnels", "--json", env=env).json() if t["host"] == "h02"]) == 1
        port = first.json()["forwards"][0]["local_port"]
        other = remoteenv("tunnel", "h02", "--service", "22", "--local-port", str(port + 100), "--detach", "--json",
                          env=env)
        assert other.code == 0 and not other.json()["reused"]  # asked for another local port: another tunnel
        assert len([t for t in remoteenv("tunnels", "--json", env=env).json() if t["host"] == "h02"]) == 2
    finally:
        remoteenv("down", "h02", env=env)
