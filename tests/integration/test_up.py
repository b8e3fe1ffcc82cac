"""`remoteenv up`, `jupyter`, `tunnel`, `tunnels`, `down` on real hosts: real JupyterLab from a wheelhouse in a
venv, real OpenSSH tunnels carrying real HTTP.

One testbed for the module (two hosts, made ready once by `up --group`): building JupyterLab's env takes
most of a minute, the tests after that take seconds each.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import testbed as testbed_lib
import wheelhouse
from cli_runner import REPO, remoteenv
from conda_share import Share
from jupyter_http import status_code

pytestmark = pytest.mark.integration


def wait_code(port: int, token: str, want: int = 200, seconds: float = 30) -> int:
    deadline = time.monotonic() + seconds
    code = 0
    while time.monotonic() < deadline:
        code = status_code(port, token)
        if code == want:
            return code
        time.sleep(0.2)
    return code


def token_of(url: str) -> str:
    return url.split("token=", 1)[1]


class Bed:
    def __init__(self, bed, env, wheels, spec) -> None:
        self.bed, self.env, self.wheels, self.spec = bed, env, wheels, spec
        self.hosts = bed.hosts

    def up(self, *extra: str, host: str | None = None):
        names = [host] if host else []
        return remoteenv("up", *names, "--dist", "venv", "--wheelhouse", str(self.wheels), "-f", str(self.spec),
                         "--no-open", *extra, env=self.env, timeout=600)

    def last_report(self) -> dict:
        return json.loads((self.bed.client.home / ".local/state/remoteenv/runs/last.json").read_text())


@pytest.fixture(scope="module")
def ready():
    house = wheelhouse.wheelhouse_or_skip()
    try:
        bed = testbed_lib.make_testbed(2, gpus=[2, 0])
    except testbed_lib.TestbedUnavailable as error:
        if testbed_lib._in_ci():
            pytest.fail(f"no testbed on this machine: {error}")
        pytest.skip(f"no testbed on this machine: {error}")
    try:
        env = bed.client.env()
        # Keepalives fast enough for the link-cut test to be short; the same config serves every test.
        bed.client.ssh_config.write_text("Host *\n  ServerAliveInterval 1\n  ServerAliveCountMax 2\n"
                                         + bed.client.ssh_config.read_text())
        share = Share(bed)
        wheels = share.wheels(house)
        spec = share.dir / "requirements.txt"
        spec.write_text("jupyterlab\nipykernel\n")
        inventory = bed.dir / "hosts.yaml"
        inventory.write_text("hosts:\n" + "".join(f"  {h.name}: {{groups: [lab]}}\n" for h in bed.hosts))
        env = {**env, "REMOTEENV_INVENTORY": str(inventory)}
        first = remoteenv("up", "--group", "lab", "--dist", "venv", "--wheelhouse", str(wheels), "-f", str(spec),
                          "--no-open", "--detach", "--json", env=env, timeout=900)
        assert first.code == 0, first.out + first.err
        yield Bed(bed, env, wheels, spec), first.json()
    finally:
        remoteenv("down", env=bed.client.env())
        bed.close()


def test_up_on_a_group_prints_urls_that_answer_only_with_their_token(ready):
    bed, first = ready
    rows = first["hosts"]
    assert [r["host"] for r in rows] == [h.name for h in bed.hosts]
    for row in rows:
        assert set(row) >= {"url", "local_port", "host", "env", "jupyter_pid", "tunnel_pid"}
        token = token_of(row["url"])
        assert len(token) == 64 and int(token, 16) >= 0  # 256 bits, hex
        assert status_code(row["local_port"], token) == 200
        assert status_code(row["local_port"], None) == 403
        assert status_code(row["local_port"], "0" * 64) == 403
    # One tunnel each, on distinct local ports.
    assert len({r["local_port"] for r in rows}) == 2


def test_the_token_is_in_no_argv_and_no_file_others_can_read(ready):
    bed, first = ready
    host = bed.hosts[0]
    token = token_of(first["hosts"][0]["url"])
    # Every process of the machine (test hosts share it), as root sees them, and as another host's user.
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            assert token.encode() not in argv, f"pid {pid}: {argv[:200]!r}"
    other = bed.hosts[1]
    assert other.run("ps -eo args").stdout.count("jupyter") >= 2  # it sees both servers, not their tokens
    assert token not in other.run("ps -eo args").stdout
    # On the host: the folder is private, every file in it 0600 (or a 0700 folder).
    modes = host.run("stat -c '%a %n' ~/.remoteenv/jupyter ~/.remoteenv/jupyter/*").stdout.split("\n")
    for line in filter(None, modes):
        mode, _path = line.split(" ", 1)
        assert mode in ("600", "700"), line
    assert other.run(f"cat {host.home}/.remoteenv/jupyter/main.token", check=False).returncode != 0
    # The probe reports the server, alive, and not its token.
    probe = remoteenv("probe", host.name, "--json", env=bed.env)
    assert token not in probe.out
    servers = probe.json()["jupyter"]
    assert [(s["name"], s["pid"], s["alive"]) for s in servers] == [("main", first["hosts"][0]["jupyter_pid"], True)]
    # Locally: the tunnel records hold the URL: 0600 in a 0700 folder.
    tunnels = bed.bed.client.home / ".local/state/remoteenv/tunnels"
    assert oct(tunnels.stat().st_mode & 0o777) == "0o700"
    for record in tunnels.glob("*.json"):
        assert oct(record.stat().st_mode & 0o777) == "0o600"


def test_jupyter_runs_from_the_env_through_the_kept_launcher(ready):
    bed, first = ready
    host, row = bed.hosts[0], first["hosts"][0]
    argv = [a.decode() for a in Path(f"/proc/{row['jupyter_pid']}/cmdline").read_bytes().split(b"\0") if a]
    launch = f"{host.home}/.remoteenv/jupyter/launch.py"
    assert argv[:3] == [f"{row['env']}/bin/python", launch, f"{row['env']}/bin/jupyter-lab"], argv
    source = (REPO / "remoteenv" / "remote" / "jupyter_launch.py").read_text()
    assert Path(launch).read_text() == source  # the kept copy is the package's
    assert host.run(f"stat -c %a {launch}").stdout.strip() == "600"


def test_a_second_up_reuses_the_server_in_one_round_trip_and_keeps_the_local_port(ready):
    bed, first = ready
    row = first["hosts"][0]
    host = bed.hosts[0].name
    again = bed.up("--detach", "--json", host=host)
    assert again.code == 0, again.out + again.err
    now = again.json()
    assert now["jupyter_pid"] == row["jupyter_pid"]
    assert now["local_port"] == row["local_port"]  # the earlier background tunnel gave way
    assert now["tunnel_pid"] != row["tunnel_pid"]
    assert status_code(now["local_port"], token_of(now["url"])) == 200
    report = bed.last_report()
    assert [s["status"] for s in report["hosts"][0]["steps"]] == ["ok"] * 5  # decided in the probe
    assert "token" not in json.dumps(report).replace('"token"', "")  # no secret in the report
    assert token_of(now["url"]) not in json.dumps(report)
    listed = remoteenv("tunnels", "--json", env=bed.env).json()
    assert sorted(t["host"] for t in listed) == sorted(h.name for h in bed.hosts)
    # The tunnel opened while the probe ran (to where Jupyter was last time), not after the run ended.
    mine = next(t for t in listed if t["host"] == host)
    run_end = (bed.bed.client.home / ".local/state/remoteenv/runs/last.json").stat().st_mtime
    assert mine["started"] < run_end
    first["hosts"][0] = now

    # Where Jupyter was last time is wrong (it moved): that early tunnel is dropped, the right one opened.
    endpoints = bed.bed.client.home / ".local/state/remoteenv/tunnels/endpoints.json"
    assert oct(endpoints.stat().st_mode & 0o777) == "0o600"
    known = json.loads(endpoints.read_text())
    known[f"{host}\tjupyter main"]["where"] = "127.0.0.1:1"
    endpoints.write_text(json.dumps(known))
    moved = bed.up("--detach", "--json", host=host)
    assert moved.code == 0, moved.out + moved.err
    assert moved.json()["local_port"] == now["local_port"]
    assert status_code(now["local_port"], token_of(moved.json()["url"])) == 200
    assert json.loads(endpoints.read_text())[f"{host}\tjupyter main"]["where"] != "127.0.0.1:1"
    first["hosts"][0] = moved.json()


def test_a_killed_ssh_and_a_cut_link_are_followed_by_a_working_tunnel(ready):
    bed, _first = ready
    host = bed.hosts[0]
    listed = {t["host"]: t for t in remoteenv("tunnels", "--json", env=bed.env).json()}[host.name]
    port, token = listed["forwards"][0]["local_port"], token_of(listed["url"])
    ssh = _ssh_child(listed["pid"])
    assert ssh, "the keeper runs no ssh"
    os.kill(ssh, signal.SIGKILL)
    assert wait_code(port, token) == 200
    assert _ssh_child(listed["pid"]) not in (None, ssh)

    host.cut_link()
    try:
        time.sleep(4)  # keepalive 1 s x 2: the tunnel is declared dead
        assert status_code(port, token) != 200
    finally:
        host.restore_link()
    assert wait_code(port, token, seconds=60) == 200
    log = (bed.bed.client.home / ".local/state/remoteenv/tunnels" / f"{listed['id']}.log").read_text()
    assert "dropped" in log and "reopened" in log


def _running(pid: int) -> bool:
    """A process that is there and not a zombie (an orphan's zombie waits for the machine's init to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].split()[0] != "Z"


def _ssh_child(keeper: int) -> int | None:
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if ppid == keeper and cmd and cmd[0].endswith(b"ssh"):
            return int(pid)
    return None


def test_foreground_tunnel_ends_on_ctrl_c_and_jupyter_keeps_running(ready):
    bed, _first = ready
    host = bed.hosts[1]
    proc = subprocess.Popen([sys.executable, "-m", "remoteenv", "tunnel", host.name, "--local-port", "9300"],
                            env={**bed.env, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:9300/lab?token="), url + proc.stderr.read()
        assert status_code(9300, token_of(url)) == 200
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "tunnel closed" in err
    finally:
        if proc.poll() is None:
            proc.kill()
    assert status_code(9300, token_of(url)) == 0  # nothing listens any more
    status = remoteenv("jupyter", "status", host.name, "--json", env=bed.env).json()
    assert status[0]["servers"][0]["answers"] is True


def test_the_asyncssh_backend_end_to_end(ready):
    bed, _first = ready
    host = bed.hosts[1]
    opened = remoteenv("tunnel", host.name, "--backend", "asyncssh", "--local-port", "9400", "--detach", "--json",
                       env=bed.env)
    assert opened.code == 0, opened.out + opened.err
    forward = opened.json()["forwards"][0]
    assert forward["local_port"] >= 9400
    assert status_code(forward["local_port"], token_of(forward["url"])) == 200
    assert remoteenv("down", host.name, env=bed.env).code == 0
    assert status_code(forward["local_port"], token_of(forward["url"])) == 0


def test_a_busy_local_port_moves_to_the_next_free_one(ready):
    import socket

    bed, _first = ready
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 9500))
        busy.listen()
        opened = remoteenv("tunnel", bed.hosts[1].name, "--local-port", "9500", "--detach", "--json", env=bed.env)
        assert opened.code == 0, opened.err
        forward = opened.json()["forwards"][0]
        assert forward["local_port"] == 9501
        assert status_code(9501, token_of(forward["url"])) == 200
    remoteenv("down", bed.hosts[1].name, env=bed.env)


def test_stop_ends_only_the_managed_server_and_socket_mode_works_end_to_end(ready):
    bed, first = ready
    host = bed.hosts[1]
    env_path = first["hosts"][1]["env"]
    # An unmanaged Jupyter of the same user, from the same env.
    host.run(f"mkdir -p ~/own && cd ~/own && JUPYTER_TOKEN=mine nohup {env_path}/bin/jupyter-lab --no-browser "
             "--ip=127.0.0.1 --port=0 >own.log 2>&1 &")
    try:
        deadline = time.monotonic() + 60
        while "is running at" not in host.run("cat ~/own/own.log").stdout:
            assert time.monotonic() < deadline, host.run("cat ~/own/own.log").stdout
            time.sleep(0.3)
        managed = first["hosts"][1]["jupyter_pid"]
        stopped = remoteenv("jupyter", "stop", host.name, "--json", env=bed.env)
        assert stopped.code == 0, stopped.err
        assert stopped.json()[0]["stopped"] == [{"name": "main", "pid": managed}]
        assert not _running(managed)
        assert host.run("pgrep -u $(id -u) -f 'jupyter-lab --no-browser --ip=127.0.0.1 --port=0$'",
                        check=False).returncode == 0  # the unmanaged one runs on

        # Unix socket mode: the server listens on a socket in the 0700 folder, the tunnel forwards to it.
        up = bed.up("--socket", "--detach", "--json", "--local-port", "9600", host=host.name)
        assert up.code == 0, up.out + up.err
        row = up.json()
        assert status_code(row["local_port"], token_of(row["url"])) == 200
        state = json.loads(host.run("cat ~/.remoteenv/jupyter/main.json").stdout)
        assert state["port"] == 0 and state["sock"].endswith("/.remoteenv/jupyter/main.sock")
        assert host.run(f"test -S {state['sock']}").returncode == 0
        assert host.run(f"stat -c %a {state['sock']}").stdout.strip() in ("600", "700")
    finally:
        host.run("pkill -u $(id -u) -f 'jupyter-lab --no-browser --ip=127.0.0.1 --port=0$'", check=False)


def test_gpu_auto_puts_jupyter_on_a_free_gpu_and_pick_free_chooses_the_host(ready):
    bed, _first = ready
    h01, h02 = bed.hosts
    other = int(h02.run("nohup sleep 603 >/dev/null 2>&1 & echo $!").stdout)  # another user's job on GPU 0
    try:
        h01.run(f"printf 'proc 0 {other} 30000\\n' > ~/.fake-gpu-state")
        up = bed.up("--gpu", "auto", "--detach", "--json", host=h01.name)
        assert up.code == 0, up.out + up.err
        assert "h01: GPU 1 is free" in up.err
        server = up.json()["jupyter_pid"]
        environ = Path(f"/proc/{server}/environ").read_bytes().split(b"\0")
        assert b"CUDA_VISIBLE_DEVICES=1" in environ
        # Its own kernel now holds GPU 1: a second `up --gpu auto` keeps it there (same server).
        h01.run(f"printf 'proc 0 {other} 30000\\nproc 1 {server} 2000\\n' > ~/.fake-gpu-state")
        again = bed.up("--gpu", "auto", "--detach", "--json", host=h01.name)
        assert again.code == 0 and again.json()["jupyter_pid"] == server, again.out + again.err
        assert "GPU 1: its Jupyter runs there already" in again.err
        # Of the group, only h01 has a free GPU: --pick-free takes it and says why.
        h01.run(f"printf 'proc 0 {other} 30000\\n' > ~/.fake-gpu-state")
        pick = bed.up("--group", "lab", "--pick-free", "--detach", "--json")
        assert pick.code == 0, pick.out + pick.err
        assert "picked h01: 1 free GPU(s)" in pick.err and pick.json()["host"] == "h01"
    finally:
        h02.run(f"kill {other}", check=False)
        h01.run("rm -f ~/.fake-gpu-state")


def test_jupyter_start_restart_and_logs(ready):
    bed, _first = ready
    host = bed.hosts[0]
    before = json.loads(host.run("cat ~/.remoteenv/jupyter/main.json").stdout)
    token = host.run("cat ~/.remoteenv/jupyter/main.token").stdout
    plan = remoteenv("jupyter", "start", host.name, "--dist", "venv", "--plan", env=bed.env)
    assert plan.code == 0 and "nothing to change" in plan.out, plan.out  # it runs and answers
    again = remoteenv("jupyter", "start", host.name, "--dist", "venv", "--restart", "--json", env=bed.env)
    assert again.code == 0, again.out + again.err
    after = json.loads(host.run("cat ~/.remoteenv/jupyter/main.json").stdout)
    assert after["pid"] != before["pid"] and after["port"] != 0
    assert host.run("cat ~/.remoteenv/jupyter/main.token").stdout != token  # a restart has a new token
    logs = remoteenv("jupyter", "logs", host.name, "--name", "main", "-n", "200", env=bed.env)
    assert logs.code == 0 and "Jupyter Server" in logs.out
    assert host.run("cat ~/.remoteenv/jupyter/main.token").stdout not in logs.out + again.out
    # Without --name, the only server there; a name that is not there lists those that are.
    only = remoteenv("jupyter", "logs", host.name, "-n", "5", env=bed.env)
    assert only.code == 0 and only.out.strip(), only.err
    nope = remoteenv("jupyter", "logs", host.name, "--name", "nope", env=bed.env)
    assert nope.code == 1 and "no Jupyter server named nope" in nope.err and "servers there: main" in nope.err


def test_up_on_an_unreachable_host_exits_3_and_says_it_once(ready):
    bed, _first = ready
    refused = bed.up(host=f"{bed.hosts[0].address}:2")  # nothing listens on port 2 there
    assert refused.code == 3, refused.out + refused.err
    assert "not up:" not in refused.err and "unreachable" in (refused.out + refused.err).lower()
    stopped = remoteenv("jupyter", "stop", bed.hosts[1].name, env=bed.env)
    assert stopped.code == 0
    none = remoteenv("tunnel", bed.hosts[1].name, env=bed.env)
    assert none.code == 1 and "no running Jupyter" in none.err and "remoteenv up" in none.err, none.err
