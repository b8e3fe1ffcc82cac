"""Tests of the testbed itself: real ssh into throwaway hosts."""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from testbed import needs_netns

pytestmark = pytest.mark.integration

GPU_QUERY = "nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader,nounits"
A100_LINE = "{}, NVIDIA A100-SXM4-80GB, 81920, 550.54.15"
BANNER_HEADER = "| NVIDIA-SMI 550.54.15    Driver Version: 550.54.15    CUDA Version: 12.4     |"
TESTS_DIR = Path(__file__).resolve().parents[1]


def ssh(bed, host, command, *options, timeout=60):
    """Run ssh as a test would, with extra ssh options before the host name."""
    argv = bed.ssh_argv(host, command)
    argv[1:1] = options
    return subprocess.run(
        argv, capture_output=True, text=True, env=bed.client.env(),
        stdin=subprocess.DEVNULL, timeout=timeout,
    )




@contextlib.contextmanager
def tcp_greeter(address):
    """A TCP server on address that says hello to every connection; yields its port."""
    server = socket.create_server((address, 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            with contextlib.suppress(OSError):
                conn, _ = server.accept()
                with conn:
                    conn.sendall(b"hello\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        server.close()


def read_banner_cmd(address, port):
    """Shell command that prints the first line a TCP server sends."""
    code = (
        f"import socket; s = socket.create_connection(({address!r}, {port}), timeout=5); "
        "print(s.makefile().readline().strip())"
    )
    return f"python3 -c {shlex.quote(code)}"


def processes_of(uid=None, marker=None):
    """Live (non-zombie) pids owned by uid or whose command line contains marker."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if fields.get("State", "").startswith("Z"):
            continue
        owned = uid is not None and int(fields["Uid"].split()[0]) == uid
        if owned or (marker and marker.encode() in cmdline):
            found.append(int(entry))
    return found


# ---------------------------------------------------------------- the shared testbed


def test_ssh_reaches_every_host_as_its_own_user(testbed):
    for host in testbed.hosts:
        result = ssh(testbed, host, "id -un; echo $HOME; command -v python3")
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [host.user, str(host.home), "/usr/bin/python3"]
    if testbed.mode == "netns":
        assert len({h.user for h in testbed.hosts}) == len(testbed.hosts)


def test_known_hosts_holds_each_host_key(testbed):
    listed = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(testbed.client.known_hosts)],
        capture_output=True, text=True, check=True,
    ).stdout
    for host in testbed.hosts:
        assert host.host_key_fingerprint in listed
        assert host.host_key_line in testbed.client.known_hosts.read_text()
    result = ssh(testbed, "h01", "true", "-o", "StrictHostKeyChecking=yes")
    assert result.returncode == 0, result.stderr


def test_client_side_is_isolated_from_the_real_home(testbed, monkeypatch):
    monkeypatch.setenv("SSH_AUTH_SOCK", "/nonexistent/agent.sock")
    env = testbed.client.env()
    assert env["HOME"] == str(testbed.client.home)
    assert "SSH_AUTH_SOCK" not in env
    assert oct(testbed.client.home.joinpath(".ssh").stat().st_mode & 0o777) == "0o700"
    config = testbed.client.ssh_config.read_text()
    for host in testbed.hosts:
        assert f"Host {host.name}\n" in config
    assert "IdentitiesOnly yes" in config
    assert testbed.ssh_argv("h02", "uptime") == ["ssh", "-F", str(testbed.client.ssh_config), "h02", "uptime"]


def test_gpu_standin_reports_each_hosts_gpus(testbed):
    result = ssh(testbed, "h01", GPU_QUERY)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [A100_LINE.format(0), A100_LINE.format(1)]
    assert ssh(testbed, "h03", GPU_QUERY).stdout.splitlines() == [A100_LINE.format(0)]
    missing = ssh(testbed, "h02", "command -v nvidia-smi")
    assert missing.returncode == 1 and missing.stdout == ""


def test_gpu_standin_banner_and_unknown_fields(testbed):
    banner = ssh(testbed, "h01", "nvidia-smi")
    assert banner.returncode == 0
    assert BANNER_HEADER in banner.stdout.splitlines()
    unknown = ssh(testbed, "h01", "nvidia-smi --query-gpu=index,fan.speed --format=csv")
    assert unknown.returncode == 2
    assert 'Field "fan.speed" is not a valid field to query.' in unknown.stdout


def test_gpu_standin_is_on_path_in_login_shells(testbed):
    host = testbed.host("h01")
    result = ssh(testbed, host, "bash -lc 'command -v nvidia-smi'")
    assert result.stdout.strip() == f"{host.home}/bin/nvidia-smi"


def test_run_executes_on_the_host_as_its_user(testbed):
    host = testbed.host("h02")
    result = host.run("id -un; pwd; echo $HOME")
    assert result.stdout.splitlines() == [host.user, str(host.home), str(host.home)]
    assert host.run("exit 3", check=False).returncode == 3
    with pytest.raises(subprocess.CalledProcessError, match="exit status 4"):
        host.run("echo oops >&2; exit 4")
    if testbed.mode == "netns":
        assert host.run("hostname -I").stdout.split() == [host.address]


def test_hosts_reach_each_other_and_the_gateway(testbed):
    h01, h02 = testbed.host("h01"), testbed.host("h02")
    banner = h01.run(read_banner_cmd(h02.address, h02.port)).stdout
    assert banner.startswith("SSH-2.0-OpenSSH")
    with tcp_greeter(testbed.gateway) as port:
        assert h02.run(read_banner_cmd(testbed.gateway, port)).stdout.strip() == "hello"


def test_proxyjump_through_another_host(testbed):
    result = ssh(testbed, "h02", "id -un", "-J", "h01")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == testbed.host("h02").user


def test_sftp_subsystem(testbed):
    host = testbed.host("h03")
    result = subprocess.run(
        ["sftp", "-F", str(testbed.client.ssh_config), "-b", "-", host.name],
        input=f"put /etc/hostname {host.home}/uploaded\n", capture_output=True, text=True,
        env=testbed.client.env(), timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert host.run("cat uploaded").stdout == Path("/etc/hostname").read_text()
    host.run("rm uploaded")


def test_blackhole_route_covers_the_test_range(testbed):
    needs_netns(testbed)
    route = subprocess.run(["ip", "route", "show", "exact", "198.18.0.0/15"],
                           capture_output=True, text=True, check=True).stdout
    assert route.split()[:2] == ["blackhole", "198.18.0.0/15"]
    # Testbeds only use 198.18.<slot>.0/24, so this address is never live;
    # a blackhole lookup fails instead of resolving via the default route.
    lookup = subprocess.run(["ip", "route", "get", "198.19.200.5"], capture_output=True, text=True)
    assert lookup.returncode != 0 and "Invalid argument" in lookup.stderr
    live = subprocess.run(["ip", "route", "get", testbed.host("h01").address],
                          capture_output=True, text=True, check=True).stdout
    assert f"dev {testbed.bridge}" in live


# ---------------------------------------------------------------- hosts of their own


def test_down_hosts_fail_to_connect(make_testbed):
    bed = make_testbed(3, down={"h02": "nosshd", "h03": "cut"})
    assert ssh(bed, "h01", "true").returncode == 0
    refused = ssh(bed, "h02", "true")
    assert refused.returncode == 255 and "Connection refused" in refused.stderr
    started = time.monotonic()
    cut = ssh(bed, "h03", "true", "-o", "ConnectTimeout=2")
    assert cut.returncode == 255
    assert "timed out" in cut.stderr, cut.stderr
    assert time.monotonic() - started < 15
    assert [h.down for h in bed.hosts] == [None, "nosshd", "cut"]


def test_cut_and_restore_link(make_testbed):
    bed = make_testbed(2)
    host = bed.host("h01")
    host.cut_link()
    assert host.down == "cut"
    assert ssh(bed, host, "true", "-o", "ConnectTimeout=2").returncode == 255
    assert ssh(bed, "h02", "true").returncode == 0
    host.restore_link()
    assert host.down is None
    result = ssh(bed, host, "echo back")
    assert result.returncode == 0 and result.stdout == "back\n", result.stderr
    # The default route came back with the link: the gateway is reachable.
    with tcp_greeter(bed.gateway) as port:
        assert host.run(read_banner_cmd(bed.gateway, port)).stdout.strip() == "hello"


def test_regenerated_host_key_is_rejected_until_trusted(make_testbed):
    bed = make_testbed(1)
    host = bed.host("h01")
    old = host.host_key_fingerprint
    host.regenerate_host_key()
    assert host.host_key_fingerprint.startswith("SHA256:") and host.host_key_fingerprint != old
    changed = ssh(bed, host, "true")
    assert changed.returncode == 255
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in changed.stderr
    assert host.host_key_fingerprint in changed.stderr
    bed.write_known_hosts()
    assert ssh(bed, host, "true").returncode == 0


def test_regenerate_host_key_while_cut(make_testbed):
    bed = make_testbed(1)
    host = bed.host("h01")
    host.cut_link()
    host.regenerate_host_key()
    host.restore_link()
    bed.write_known_hosts()
    result = ssh(bed, host, "true", "-o", "StrictHostKeyChecking=yes")
    assert result.returncode == 0, result.stderr


def test_unknown_hosts_until_accepted(make_testbed):
    bed = make_testbed(1, known=False)
    host = bed.host("h01")
    assert bed.client.known_hosts.read_text() == ""
    rejected = ssh(bed, host, "true")
    assert rejected.returncode == 255 and "Host key verification failed" in rejected.stderr
    accepted = ssh(bed, host, "true", "-o", "StrictHostKeyChecking=accept-new")
    assert accepted.returncode == 0, accepted.stderr
    listed = subprocess.run(["ssh-keygen", "-l", "-f", str(bed.client.known_hosts)],
                            capture_output=True, text=True, check=True).stdout
    assert host.host_key_fingerprint in listed


def test_close_leaves_nothing_behind(make_testbed):
    bed = make_testbed(2, gpus=1)
    for host in bed.hosts:
        # Processes a test may leave behind: detached over ssh, and via run().
        ssh(bed, host, "nohup sleep 1000 >/dev/null 2>&1 &")
        host.run("setsid sleep 1001 >/dev/null 2>&1 </dev/null &")
    directory, state = bed.dir, bed._slot.state_path
    users = [h.user for h in bed.hosts]
    uids = [pwd.getpwnam(u).pw_uid for u in users]
    namespaces = [h.netns for h in bed.hosts if h.netns]
    links = [name for name in os.listdir("/sys/class/net") if re.fullmatch(rf"rtb{bed.slot}(br|v\d+)", name)]
    assert len(links) == (3 if bed.mode == "netns" else 0)
    assert state.exists()
    started = time.monotonic()
    bed.close()
    print(f"close of 2 hosts: {time.monotonic() - started:.2f}s")
    assert not directory.exists()
    assert not state.exists()
    assert processes_of(marker=str(directory)) == []
    if bed.mode == "netns":
        assert set(namespaces).isdisjoint(os.listdir("/run/netns"))
        assert set(links).isdisjoint(os.listdir("/sys/class/net"))
        for user, uid in zip(users, uids, strict=True):
            with pytest.raises(KeyError):
                pwd.getpwnam(user)
            with pytest.raises(KeyError):
                grp.getgrnam(user)
            assert processes_of(uid=uid) == []
    bed.close()  # a second close is harmless


def test_leftovers_of_a_killed_process_are_removed(make_testbed):
    child = textwrap.dedent(
        """
        import json, os, signal, subprocess, sys
        sys.path.insert(0, sys.argv[1])
        import testbed
        bed = testbed.make_testbed(2, prefix=sys.argv[2])
        print(json.dumps({"dir": str(bed.dir), "users": [h.user for h in bed.hosts],
                          "netns": [h.netns for h in bed.hosts], "mode": bed.mode}), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    # Host names of their own: other testbeds may take the freed slot at once.
    prefix = f"dead{os.getpid()}"
    proc = subprocess.run([sys.executable, "-c", child, str(TESTS_DIR), prefix],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    left = json.loads(proc.stdout)
    assert Path(left["dir"]).exists()  # the killed process cleaned nothing
    make_testbed(1)  # claiming a slot removes what dead testbeds left
    assert not Path(left["dir"]).exists()
    assert processes_of(marker=left["dir"]) == []
    if left["mode"] == "netns":
        assert set(left["netns"]).isdisjoint(os.listdir("/run/netns"))
        for user in left["users"]:
            with pytest.raises(KeyError):
                pwd.getpwnam(user)


def test_concurrent_testbeds_do_not_collide(make_testbed):
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda _: make_testbed(2), range(2))
    assert first.slot != second.slot
    if first.mode == "netns":
        assert {h.address for h in first.hosts}.isdisjoint(h.address for h in second.hosts)
    for bed in (first, second):
        for host in bed.hosts:
            result = ssh(bed, host, "id -un")
            assert result.stdout.strip() == host.user, result.stderr


def own_links(bed) -> set[str]:
    """The links a testbed made, by their names on this machine."""
    return {name for name in os.listdir("/sys/class/net") if re.fullmatch(rf"rtb{bed.slot}(br|v\d+)", name)}


def test_concurrent_testbeds_count_only_their_own_links(make_testbed):
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda n: make_testbed(n), (2, 3))
    needs_netns(first)
    import testbed

    expected = {bed.slot: {bed.bridge, *(f"rtb{bed.slot}v{i}" for i in range(1, len(bed.hosts) + 1))}
                for bed in (first, second)}
    for bed in (first, second):
        assert own_links(bed) == expected[bed.slot]
        # What close() and a later cleanup will delete: this testbed's links, nobody else's.
        assert set(bed._res.links) == expected[bed.slot]
        assert set(json.loads(bed._slot.state_path.read_text())["links"]) == expected[bed.slot]
        assert set(bed._res.netns) == {h.netns for h in bed.hosts}
    found = testbed._orphans_by_slot()
    for bed in (first, second):
        assert set(found[bed.slot].links) == expected[bed.slot]
        assert set(found[bed.slot].netns) == {h.netns for h in bed.hosts}

    # A third testbed claims a slot (removing leftovers on the way): the live two keep everything.
    third = make_testbed(1)
    assert own_links(first) == expected[first.slot] and own_links(second) == expected[second.slot]
    # Closing one leaves the other whole and working.
    first.close()
    assert own_links(first) == set()
    assert own_links(second) == expected[second.slot]
    for host in [*second.hosts, *third.hosts]:
        bed = second if host in second.hosts else third
        result = ssh(bed, host, "id -un")
        assert result.stdout.strip() == host.user, result.stderr


@pytest.fixture
def without_ip(tmp_path, monkeypatch):
    """Every tool the testbed looks for except `ip`, as on a machine without iproute2."""
    import testbed

    tools = tmp_path / "tools"
    tools.mkdir()
    search = os.environ.get("PATH", "") + os.pathsep + testbed.TOOL_PATH
    for name in ("sshd", "ssh-keygen", "ssh", "setpriv", "useradd", "userdel"):
        found = shutil.which(name, path=search)
        if found:
            (tools / name).symlink_to(found)
    monkeypatch.setattr(testbed, "TOOL_PATH", str(tools))
    monkeypatch.setenv("PATH", str(tools))
    return testbed


def test_missing_namespace_tool_falls_back_to_local_mode_outside_ci(without_ip, monkeypatch):
    testbed = without_ip
    monkeypatch.delenv("CI", raising=False)
    assert testbed._pick_mode("auto") == "local"
    with pytest.raises(testbed.TestbedUnavailable, match="namespace mode"):
        testbed._pick_mode("netns")


def test_missing_namespace_tool_fails_under_ci(without_ip, monkeypatch):
    testbed = without_ip
    monkeypatch.setenv("CI", "true")
    why = "needs root" if os.geteuid() != 0 else "lacks ip"
    with pytest.raises(testbed.TestbedUnavailable, match=f"namespace mode {why}.*no fallback"):
        testbed._pick_mode("auto")
    assert testbed._pick_mode("local") == "local"  # asked for by name: still fine
    # The fixtures turn it into a failure, not a skip.
    import conftest

    with pytest.raises(pytest.fail.Exception, match="no testbed on this machine"):
        conftest._make(1)
    monkeypatch.setenv("CI", "false")
    assert testbed._pick_mode("auto") == "local"


def test_fifty_hosts_are_made_quickly(make_testbed):
    started = time.monotonic()
    bed = make_testbed(50, gpus=1)
    elapsed = time.monotonic() - started
    print(f"made 50 hosts in {elapsed:.2f}s")
    assert elapsed < 30
    assert len({(h.address, h.port) for h in bed.hosts}) == 50
    for name in ("h01", "h25", "h50"):
        result = ssh(bed, name, GPU_QUERY)
        assert result.stdout.splitlines() == [A100_LINE.format(0)], result.stderr
    started = time.monotonic()
    bed.close()
    print(f"removed 50 hosts in {time.monotonic() - started:.2f}s")


def test_bad_options_are_rejected(make_testbed):
    with pytest.raises(ValueError, match="unknown hosts"):
        make_testbed(2, down={"h07": "nosshd"})
    with pytest.raises(ValueError, match="modes"):
        make_testbed(2, down={"h01": "sleepy"})
    with pytest.raises(ValueError, match="gpus"):
        make_testbed(2, gpus=[1])


def test_prefix_names_hosts(make_testbed):
    bed = make_testbed(2, prefix="gpu")
    assert [h.name for h in bed.hosts] == ["gpu01", "gpu02"]
    assert ssh(bed, "gpu02", "true").returncode == 0


def test_add_hosts_extends_config_and_known_hosts(make_testbed):
    bed = make_testbed(1)
    (new,) = bed.add_hosts(1, gpus=1)
    assert new.name == "h02"
    result = ssh(bed, "h02", GPU_QUERY)
    assert result.stdout.splitlines() == [A100_LINE.format(0)], result.stderr


# ---------------------------------------------------------------- local (fallback) mode


def test_local_mode(make_testbed):
    bed = make_testbed(3, gpus=[1, 0, 0], mode="local", down={"h03": "nosshd"})
    h01, h02, h03 = bed.hosts
    assert {h.address for h in bed.hosts} == {"127.0.0.1"} and h01.netns is None
    assert h01.host_key_line.startswith(f"[127.0.0.1]:{h01.port} ssh-ed25519 ")
    result = ssh(bed, h01, f"echo $HOME; {GPU_QUERY}")
    assert result.stdout.splitlines() == [str(h01.home), A100_LINE.format(0)], result.stderr
    assert ssh(bed, h02, "command -v nvidia-smi").returncode == 1
    assert "Connection refused" in ssh(bed, h03, "true").stderr
    h01.cut_link()
    assert ssh(bed, h01, "true", "-o", "ConnectTimeout=2").returncode == 255
    h01.restore_link()
    assert ssh(bed, h01, "true").returncode == 0
    ssh(bed, h01, "nohup sleep 1002 >/dev/null 2>&1 &")
    directory = str(bed.dir)
    bed.close()
    assert not Path(directory).exists()
    assert processes_of(marker="sleep\x001002") == []


@pytest.fixture
def shared_tmp():
    """A temp dir other users can read (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="remoteenv-plain-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_local_mode_as_an_unprivileged_user(shared_tmp):
    """Run the testbed as a plain user, which is what picks local mode by itself."""
    if os.geteuid() != 0:
        pytest.skip("needs root to make the plain user")
    tmp_path = shared_tmp
    # A private copy: the checkout may not be readable by other users.
    lib = tmp_path / "lib"
    (lib / "fakes").mkdir(parents=True)
    shutil.copy(TESTS_DIR / "testbed.py", lib)
    shutil.copy(TESTS_DIR / "fakes" / "nvidia-smi", lib / "fakes")
    script = lib / "check.py"
    script.write_text(textwrap.dedent(
        """
        import json, subprocess, sys
        sys.path.insert(0, sys.argv[1])
        import testbed
        with testbed.make_testbed(2, gpus=[1, 0]) as bed:
            out = {"mode": bed.mode, "users": [h.user for h in bed.hosts]}
            for host in bed.hosts:
                argv = bed.ssh_argv(host, "id -un; command -v nvidia-smi || echo none")
                out[host.name] = subprocess.run(argv, capture_output=True, text=True,
                                                env=bed.client.env()).stdout.split()
        print(json.dumps(out))
        """
    ))
    home = tmp_path / "home"
    user = f"remoteenv-plain-{os.getpid()}"
    subprocess.run(["useradd", "--home-dir", str(home), "--create-home", "--shell", "/bin/bash",
                    "--password", "*", user], check=True)
    try:
        entry = pwd.getpwnam(user)
        os.chmod(lib, 0o755)
        result = subprocess.run(
            ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "env", "-i",
             f"HOME={home}", f"USER={user}", "PATH=/usr/bin:/bin", "/usr/bin/python3", str(script), str(lib)],
            capture_output=True, text=True, timeout=120, cwd=home,
        )
        assert result.returncode == 0, result.stderr
        out = json.loads(result.stdout)
        assert out["mode"] == "local" and out["users"] == [user, user]
        assert out["h01"][0] == user and out["h01"][1].endswith("/home/h01/bin/nvidia-smi")
        assert out["h02"] == [user, "none"]
        assert processes_of(uid=entry.pw_uid) == []
    finally:
        subprocess.run(["pkill", "-KILL", "-u", user], check=False)
        subprocess.run(["userdel", "-f", user], check=False)
        shutil.rmtree(Path("/tmp") / f"remoteenv-testbed-{entry.pw_uid}", ignore_errors=True)


def test_nvidia_smi_standin_formats(tmp_path):
    def smi(*args, gpus="2"):
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "FAKE_NVIDIA_SMI_GPUS": gpus}
        return subprocess.run(["/bin/sh", str(TESTS_DIR / "fakes" / "nvidia-smi"), *args],
                              capture_output=True, text=True, env=env)

    with_header = smi("--query-gpu=index,memory.total", "--format=csv")
    assert with_header.stdout.splitlines() == ["index, memory.total [MiB]", "0, 81920 MiB", "1, 81920 MiB"]
    assert smi("--query-gpu=name", "--format=csv,noheader").stdout.splitlines() == ["NVIDIA A100-SXM4-80GB"] * 2
    assert smi("-L").stdout.startswith("GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-")
    none = smi(gpus="0")
    assert none.returncode == 6 and none.stdout == "No devices were found\n"
    assert smi("--query-gpu=index").returncode == 2  # no --format
    assert smi("--bogus").returncode == 2
    # Without the variable the count comes from ~/.fake-gpus.
    (tmp_path / ".fake-gpus").write_text("3\n")
    from_file = smi(*GPU_QUERY.split()[1:], gpus="")
    assert from_file.stdout.splitlines() == [A100_LINE.format(i) for i in range(3)]
