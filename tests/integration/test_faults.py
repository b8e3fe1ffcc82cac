"""Faults on real hosts: a full disk, secrets and argv, private temp files, dead links, signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from cli_runner import REPO, remoteenv
from testbed import needs_netns

from remoteenv.inventory import load_inventory, resolve_many
from remoteenv.transport import ConnectOptions, connect

pytestmark = pytest.mark.integration


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def needs_root() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("this test mounts a filesystem: CI runs as root")
        pytest.skip("needs root to mount a small filesystem")


def last_report(bed) -> dict:
    return json.loads((bed.client.home / ".local/state/remoteenv/runs/last.json").read_text())


def host_uid(host) -> int:
    return int(host.run("id -u").stdout)


def cmdlines() -> list[str]:
    """Every process's argv on this machine (test hosts share its process table)."""
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                out.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                pass
    return out


def prepend_ssh_config(bed, text: str) -> None:
    """ssh config's first value wins: settings before the per-host blocks apply to every host."""
    path = bed.client.ssh_config
    path.write_text(textwrap.dedent(text).lstrip("\n") + "\n" + path.read_text())


def start_apply(bed, *args: str, env: dict | None = None) -> subprocess.Popen:
    env = {**(env or bed.client.env()), "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "remoteenv", "apply", *args, "--json"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class EventReader:
    """Reads a running `apply --json`'s events in a thread, so the test can wait for one."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.events: list[dict] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            self.events.append(json.loads(line))

    def wait_for(self, predicate, count: int = 1, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while sum(1 for e in list(self.events) if predicate(e)) < count:
            assert time.monotonic() < deadline, f"events so far: {self.events}"
            time.sleep(0.05)

    def join(self) -> None:
        self._thread.join(timeout=10)


# -- 1. a full disk ----------------------------------------------------------------------------------
def in_sshd_mounts(host, *argv: str) -> subprocess.CompletedProcess:
    """Run argv (as root) where the host's sshd sessions see the filesystem.

    `ip netns exec` gives sshd a mount namespace of its own, and mounts made here after it started
    do not reach it where / is not a shared mount: mount and look inside sshd's namespace.
    """
    prefix = ["nsenter", "-t", str(host._proc.pid), "-m"] if host.netns and host._proc else []
    return subprocess.run([*prefix, *argv], check=True, capture_output=True, text=True)


@pytest.fixture
def small_disk(make_testbed):
    """A host whose ~/small is a 1 MiB filesystem, holding a good file `data`."""
    needs_root()
    bed = make_testbed(1)
    host = bed.hosts[0]
    folder = host.home / "small"
    folder.mkdir()
    uid = host_uid(host)
    in_sshd_mounts(host, "mount", "-t", "tmpfs", "-o", f"size=1m,uid={uid},gid={uid},mode=0755", "tmpfs",
                   str(folder))
    try:
        in_sshd_mounts(host, "sh", "-c", f"printf 'good data\\n' > {folder}/data; chown {uid} {folder}/data")
        yield bed, host
    finally:
        subprocess.run(["nsenter", "-t", str(host._proc.pid), "-m", "umount", "-l", str(folder)]
                       if host.netns and host._proc else ["umount", "-l", str(folder)], check=False)


def test_upload_to_a_full_disk_fails_and_keeps_the_old_file(small_disk, tmp_path):
    bed, host = small_disk
    (tmp_path / "big.bin").write_bytes(os.urandom(3 << 20))
    playbook = write(tmp_path / "up.yaml", """
        steps:
          - upload:
              src: big.bin
              dest: ~/small/data
        """)
    result = remoteenv("apply", str(playbook), host.name, env=bed.client.env())
    assert result.code == 1, result.out + result.err
    assert in_sshd_mounts(host, "cat", f"{host.home}/small/data").stdout == "good data\n"
    message = last_report(bed)["hosts"][0]["message"]
    assert "of 3145728 bytes reached the host" in message and "free space there" in message, message
    assert "left unchanged" in message
    # No temp file is left to fill the disk.
    assert in_sshd_mounts(host, "ls", "-A", f"{host.home}/small").stdout.split() == ["data"]


def test_upload_that_fits_replaces_the_file(small_disk, tmp_path):
    bed, host = small_disk
    playbook = write(tmp_path / "up.yaml", """
        steps:
          - upload:
              content: "new\\n"
              dest: ~/small/data
              mode: "0600"
        """)
    result = remoteenv("apply", str(playbook), host.name, env=bed.client.env())
    assert result.code == 0, result.out + result.err
    data = f"{host.home}/small/data"
    assert in_sshd_mounts(host, "sh", "-c", f"cat {data}; stat -c %a {data}").stdout == "new\n600\n"


# -- 3. temp files private from the first byte ----------------------------------------------------------
def test_upload_temp_file_is_private_while_it_is_written(testbed, tmp_path, monkeypatch):
    host = testbed.host("h02")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    monkeypatch.setenv("HOME", str(testbed.client.home))
    [resolved] = resolve_many(load_inventory(None), [host.name])
    conn = connect(resolved, ConnectOptions())
    errors: list[BaseException] = []

    def upload() -> None:
        try:
            conn.put(fifo, "~/.rt-private", mode=0o644)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    worker = threading.Thread(target=upload)
    worker.start()
    try:
        with open(fifo, "wb") as pipe:
            part_one = b"secret part one\n" * (1 << 16)  # 1 MiB: the upload reads in 1 MiB chunks
            pipe.write(part_one)
            pipe.flush()
            deadline = time.monotonic() + 20
            while True:
                found = host.run("stat -c '%a %s %n' .?*.remoteenv-* 2>/dev/null", check=False).stdout.split()
                if found and found[1] != "0":
                    break
                assert time.monotonic() < deadline, "the temp file never held bytes"
                time.sleep(0.05)
            assert found[0] == "600", found
            pipe.write(b"and part two\n")
        worker.join(timeout=30)
    finally:
        conn.close()
    assert not errors, errors
    assert host.run("cat ~/.rt-private").stdout == (part_one + b"and part two\n").decode()
    assert host.run("stat -c %a ~/.rt-private").stdout == "644\n"


# -- 2. secrets never in argv ---------------------------------------------------------------------------
def test_shell_step_secret_never_shows_in_any_argv(testbed, tmp_path):
    host, other = testbed.host("h01"), testbed.host("h03")
    secret = "tok-" + os.urandom(8).hex()
    playbook = write(tmp_path / "secret.yaml", f"""
        steps:
          - name: with a token
            shell:
              command: "curl_token={secret}; sleep 3; echo used ${{#curl_token}}"
              unless: "test {secret} = nope"
              timeout: 60
          - name: without a timeout
            shell:
              command: "curl_token={secret}; sleep 2"
        """)
    proc = start_apply(testbed, str(playbook), host.name)
    seen: list[str] = []
    ps_seen: list[str] = []
    started = time.monotonic()
    while proc.poll() is None and time.monotonic() - started < 60:
        seen += [c for c in cmdlines() if secret in c]
        ps_seen += [ln for ln in other.run("ps -eo args", check=False).stdout.splitlines() if secret in ln]
        time.sleep(0.05)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, out + err
    assert not seen, seen
    assert not ps_seen, ps_seen
    report = last_report(testbed)
    assert [s["status"] for s in report["hosts"][0]["steps"]] == ["changed", "changed"]


def test_shell_step_runs_like_sh_c(testbed, tmp_path):
    """eval in place of `sh -c`: no -e, no -u, no arguments, stdin empty, exit codes kept."""
    host = testbed.host("h02")
    playbook = write(tmp_path / "semantics.yaml", """
        steps:
          - shell: "false; echo after-false $# ${undefined_var:-unset} $(cat | wc -c) > ~/.rt-sem"
          - shell: "exit 7"
        """)
    result = remoteenv("apply", str(playbook), host.name, env=testbed.client.env())
    assert result.code == 1
    assert host.run("cat ~/.rt-sem").stdout == "after-false 0 unset 0\n"
    steps = last_report(testbed)["hosts"][0]["steps"]
    assert steps[1]["status"] == "failed" and "exited 7" in steps[1]["message"]


# -- 4. a dead link --------------------------------------------------------------------------------
def test_cut_link_without_timeout_fails_that_host_by_keepalive(make_testbed, tmp_path):
    bed = make_testbed(3)
    needs_netns(bed)  # in local mode a cut stops sshd's listener, not the session already open
    prepend_ssh_config(bed, """
        Host *
            ServerAliveInterval 1
            ServerAliveCountMax 2
        """)
    playbook = write(tmp_path / "long.yaml", """
        steps:
          - shell: sleep 4 && echo done >> ~/.rt-dead
        """)
    proc = start_apply(bed, str(playbook), "h01", "h02", "h03")
    lost = bed.host("h02")
    try:
        deadline = time.monotonic() + 30
        while lost.run("pgrep -u $(id -u) -f '^sleep 4'", check=False).returncode != 0:
            assert time.monotonic() < deadline, "the step never started on h02"
            time.sleep(0.1)
        lost.cut_link()
        cut_at = time.monotonic()
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - cut_at
    finally:
        lost.restore_link()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 3, out + err  # the only failure: a host that could not be reached
    ends = {e["host"]: e for e in map(json.loads, out.splitlines()) if e["event"] == "host_end"}
    assert {n: e["status"] for n, e in ends.items()} == {"h01": "changed", "h02": "unreachable", "h03": "changed"}
    assert "ServerAliveInterval 1" in ends["h02"]["message"], ends["h02"]["message"]
    # Bounded by the keepalive settings (1 s x (2 + 1)), not by a step timeout: there is none.
    assert took < 15, took


# -- 5. signals ------------------------------------------------------------------------------------------
SLEEPY = """
    steps:
      - shell: touch ~/.rt-sig-before
      - shell: sleep 120
      - shell: touch ~/.rt-sig-after
    """


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_write_the_report_and_end_remote_commands(make_testbed, tmp_path, signum, code):
    bed = make_testbed(3)
    playbook = write(tmp_path / "sleepy.yaml", SLEEPY)
    proc = start_apply(bed, str(playbook), "h01", "h02", "h03")
    events = EventReader(proc)
    events.wait_for(lambda e: e["event"] == "step_start" and e.get("step") == 1, count=3)
    time.sleep(0.3)
    sent = time.monotonic()
    proc.send_signal(signum)
    assert proc.wait(timeout=20) == code, proc.stderr.read()
    assert time.monotonic() - sent < 10
    events.join()
    assert events.events[-1]["event"] == "run_end" and events.events[-1]["exit_code"] == code
    report = last_report(bed)
    assert report["cancelled"] is True and report["exit_code"] == code
    assert {h["host"]: h["status"] for h in report["hosts"]} == {n: "cancelled" for n in ("h01", "h02", "h03")}
    time.sleep(0.5)
    for host in bed.hosts:
        assert "sleep 120" not in host.processes(), host.name
        assert host.run("test -e ~/.rt-sig-after", check=False).returncode != 0


def test_second_ctrl_c_with_a_cut_host_ends_at_once(make_testbed, tmp_path):
    bed = make_testbed(2)
    needs_netns(bed)
    playbook = write(tmp_path / "sleepy.yaml", SLEEPY)
    proc = start_apply(bed, str(playbook), "h01", "h02")
    events = EventReader(proc)
    cut = bed.host("h02")
    try:
        events.wait_for(lambda e: e["event"] == "step_start" and e.get("step") == 1, count=2)
        cut.cut_link()
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=20)
        took = time.monotonic() - sent
    finally:
        cut.restore_link()
        if proc.poll() is None:
            proc.kill()
    assert code == 130, proc.stderr.read()
    assert took < 5, took
    report = last_report(bed)
    assert report["cancelled"] is True and report["exit_code"] == 130
    assert {h["host"]: h["status"] for h in report["hosts"]} == {"h01": "cancelled", "h02": "cancelled"}
    assert "sleep 120" not in bed.host("h01").processes()


def test_ctrl_c_during_probe_of_twenty_hosts_exits_130_with_what_was_done(make_testbed, tmp_path):
    bed = make_testbed(20)
    needs_netns(bed)
    slow = bed.hosts[10:]
    for host in slow:
        host.cut_link()  # their connects hang until the (10 s) connect timeout
    env = {**bed.client.env(), "PYTHONPATH": str(REPO)}
    try:
        inventory = tmp_path / "hosts.yaml"
        inventory.write_text("hosts:\n" + "".join(f"  {h.name}: {{}}\n" for h in bed.hosts))
        proc = subprocess.Popen([sys.executable, "-m", "remoteenv", "-i", str(inventory), "probe", "h*", "--json"],
                                env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(4)  # the reachable half answers in well under a second each
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        took = time.monotonic() - sent
    finally:
        for host in slow:
            host.restore_link()
    assert proc.returncode == 130, err
    assert took < 6, took
    outcomes = {o["host"]: o for o in json.loads(out)}
    assert len(outcomes) == 20
    done = {name for name, o in outcomes.items() if o["facts"]}
    assert done == {h.name for h in bed.hosts[:10]}
    assert all("cancelled" in outcomes[h.name]["error"] for h in slow)
    assert "cancelled" in err


def test_commands_are_found_by_their_marker_where_sshd_will_not_signal_them(testbed, monkeypatch):
    """sshd refuses signal requests for root logins: the marker in the scripts' environment still
    reaches every process of the run (the shell and its children), and nothing else."""
    host = testbed.host("h02")
    monkeypatch.setenv("HOME", str(testbed.client.home))
    [resolved] = resolve_many(load_inventory(None), [host.name])
    bystander = subprocess.Popen(testbed.ssh_argv(host, "sleep 97"), env=testbed.client.env(),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while "sleep 97" not in host.processes(check=False):
        assert time.monotonic() < deadline  # the bystander runs before the run starts
        time.sleep(0.05)
    conn = connect(resolved, ConnectOptions())
    outcome: list = []
    worker = threading.Thread(target=lambda: outcome.append(conn.run_script("sleep 91; echo late")))
    worker.start()
    try:
        deadline = time.monotonic() + 20
        while "sleep 91" not in host.processes(check=False):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        started = time.monotonic()
        conn._signal_marked("TERM")  # the fallback alone, as for a root login
        worker.join(timeout=15)
        assert not worker.is_alive() and time.monotonic() - started < 10
        assert outcome and not outcome[0].ok and "late" not in outcome[0].stdout
        args = host.processes(check=False)
        assert "sleep 91" not in args and "sleep 97" in args  # only this run's processes
    finally:
        conn.close()
        bystander.kill()
