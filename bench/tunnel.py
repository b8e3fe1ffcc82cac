"""remoteenv's tunnels (backends openssh and asyncssh) against a bare `ssh -N -L`: throughput and latency.

    python bench/tunnel.py [--runs N] [--requests N] [--size-mib N]

The host is made ready first with `remoteenv up` (Jupyter running; its tunnel closed). On the host's
loopback a `python3 -m http.server` serves a file of random bytes (256 MiB by default). Three tunnels,
one at a time, each forwarding a local port to Jupyter and another to that file server:

* `remoteenv tunnel HOST --service jupyter --service PORT --detach --json --backend openssh`
* the same with `--backend asyncssh` (the connection held in remoteenv's keeper process)
* the baseline: `ssh -N -L LOCAL:127.0.0.1:JUPYTER -L LOCAL2:127.0.0.1:PORT HOST` with the same ssh
  options as the other benchmarks (no connection sharing)

All three are open at once (idle ones cost next to nothing). Through each in turn: --requests GET
/api/status to Jupyter (with the token) over ONE keep-alive HTTP/1.1 connection, and the same number
again each on a NEW connection (a new SSH channel per request): median and p99 latency of each. Then
--runs rounds of downloading the file once through each tunnel (a new connection each, read in 1 MiB
chunks and thrown away; the order rotates round by round so drift hits all alike): median MiB/s.
The machine's cores are shared by both SSH ends, the file server and the client: on a busy or small
machine, use more --runs.

The tunnel carries everything a person does in JupyterLab, so it must not cost bandwidth against the
ssh -L they would type themselves. Goal: openssh throughput at least 0.9 of bare ssh -L; asyncssh's
ratio and all latencies are reported.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import subprocess
import time

from _common import (
    cli_env,
    free_local_port,
    jupyter_host,
    remoteenv_argv,
    run_json,
    run_ok,
    ssh_options,
    url_port_token,
    wait_status,
)

FILE_PORT = 18080  # on the host's own loopback (its own network namespace)
CHUNK = 1 << 20


def download(port: int, size: int) -> float:
    """Seconds to GET /blob through 127.0.0.1:port, reading every byte."""
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("GET", "/blob")
        response = conn.getresponse()
        if response.status != 200:
            raise SystemExit(f"file server answered {response.status} through 127.0.0.1:{port}")
        got = 0
        while chunk := response.read(CHUNK):
            got += len(chunk)
    finally:
        conn.close()
    if got != size:
        raise SystemExit(f"downloaded {got} bytes of {size} through 127.0.0.1:{port}")
    return time.perf_counter() - start


def latencies(port: int, token: str, n: int, keep_alive: bool) -> list[float]:
    """Seconds of each of n GET /api/status, over one keep-alive connection or a new one each."""
    headers = {"Authorization": f"token {token}"}
    out = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for _ in range(n):
            start = time.perf_counter()
            if not keep_alive:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/api/status", headers=headers)
            response = conn.getresponse()
            response.read()
            if not keep_alive:
                conn.close()
            out.append(time.perf_counter() - start)
            if response.status != 200:
                raise SystemExit(f"/api/status answered {response.status} through 127.0.0.1:{port}")
    finally:
        conn.close()
    return out


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"ssh -L did not listen on 127.0.0.1:{port}")
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="downloads through each tunnel")
    parser.add_argument("--requests", type=int, default=2000, help="small requests through each tunnel, per mode")
    parser.add_argument("--size-mib", type=int, default=256)
    args = parser.parse_args()

    from testbed import make_testbed

    size = args.size_mib << 20
    with make_testbed(1) as bed:
        host = bed.hosts[0]
        env = bed.client.env()
        penv = cli_env(env)
        jupyter_host(bed)
        served = host.run(f"mkdir -p ~/bench-files && head -c {size} /dev/urandom > ~/bench-files/blob && "
                          f"cd ~/bench-files && nohup python3 -m http.server {FILE_PORT} --bind 127.0.0.1 "
                          f">/dev/null 2>&1 & echo $!", timeout=300)
        server_pid = int(served.stdout.split()[-1])
        try:
            results = measure(bed, host, env, penv, size, args)
        finally:
            host.run(f"kill {server_pid}", check=False)
        summarize(results, args)


def measure(bed, host, env, penv, size, args) -> dict[str, dict[str, list[float]]]:
    names = ["ssh -L", "openssh", "asyncssh"]
    results = {name: {"download": [], "keep-alive": [], "new connection": []} for name in names}

    def remoteenv_tunnel(backend: str):
        row = run_json(remoteenv_argv("tunnel", host.name, "--service", "jupyter", "--service", str(FILE_PORT),
                                      "--backend", backend, "--local-port", str(free_local_port()),
                                      "--detach", "--json"), penv)
        jupyter, files = row["forwards"]
        port, token = url_port_token(jupyter["url"])
        return port, token, files["local_port"], lambda: run_ok(remoteenv_argv("down", host.name), penv)

    # The baseline forwards to the same remote ports: remoteenv's tunnel says where Jupyter listens.
    row = run_json(remoteenv_argv("tunnel", host.name, "--detach", "--json"), penv)
    remote_jupyter = row["forwards"][0]["remote"]
    _, token = url_port_token(row["forwards"][0]["url"])
    run_ok(remoteenv_argv("down", host.name), penv)

    def bare_tunnel():
        jport, fport = free_local_port(), free_local_port()
        proc = subprocess.Popen(["ssh", *ssh_options(bed), "-N", "-o", "ExitOnForwardFailure=yes",
                                 "-L", f"127.0.0.1:{jport}:{remote_jupyter}",
                                 "-L", f"127.0.0.1:{fport}:127.0.0.1:{FILE_PORT}", host.name],
                                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        wait_listening(jport, proc)
        wait_listening(fport, proc)

        def close() -> None:
            proc.terminate()
            proc.wait()

        return jport, token, fport, close

    openers = {"ssh -L": bare_tunnel, "openssh": lambda: remoteenv_tunnel("openssh"),
               "asyncssh": lambda: remoteenv_tunnel("asyncssh")}
    opened = {}
    try:
        for name in names:
            opened[name] = openers[name]()
        for name in names:
            jport, tok, _, _ = opened[name]
            wait_status(jport, tok)
            latencies(jport, tok, 50, True)  # warm up (Jupyter's first requests are slower)
            results[name]["keep-alive"] = latencies(jport, tok, args.requests, True)
            results[name]["new connection"] = latencies(jport, tok, args.requests, False)
        for run in range(args.runs):
            for name in names[run % len(names):] + names[:run % len(names)]:
                results[name]["download"].append(download(opened[name][2], size))
    finally:
        for name in reversed(list(opened)):
            opened[name][3]()
    return results


def summarize(results, args) -> None:
    size_mib = args.size_mib
    rate = {name: size_mib / statistics.median(r["download"]) for name, r in results.items()}
    for name, r in results.items():
        best = size_mib / min(r["download"])
        print(f"{name:>9}: download {rate[name]:.0f} MiB/s median (best {best:.0f}) of {len(r['download'])} x "
              f"{size_mib} MiB; /api/status keep-alive median {statistics.median(r['keep-alive']) * 1000:.2f} ms "
              f"p99 {p99(r['keep-alive']) * 1000:.2f} ms; new connection each median "
              f"{statistics.median(r['new connection']) * 1000:.2f} ms p99 {p99(r['new connection']) * 1000:.2f} ms "
              f"({args.requests} requests each)")
    openssh = rate["openssh"] / rate["ssh -L"]
    asyncssh = rate["asyncssh"] / rate["ssh -L"]
    print(f"tunnel throughput openssh: ratio {openssh:.2f} of bare ssh -L (goal: >= 0.9)")
    print(f"tunnel throughput asyncssh: ratio {asyncssh:.2f} of bare ssh -L (reported)")
    raise SystemExit(0 if openssh >= 0.9 else 1)


if __name__ == "__main__":
    main()
