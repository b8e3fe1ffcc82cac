"""`remoteenv up HOST` with the env ready but Jupyter stopped, over jupyter-forward doing the same, same host.

    python bench/up_cold.py [--runs N] [--jupyter-forward PATH]

The host is made ready first with one `remoteenv up` (a venv env of jupyterlab and ipykernel from the
tests' wheelhouse). Before every timed run, untimed, every Jupyter on the host is stopped (`remoteenv
down HOST` and `remoteenv jupyter stop HOST` for remoteenv's; a kill of the pid in each jpserver-PID.json
of the default runtime folder for jupyter-forward's) so each side starts Jupyter from nothing.

* ours: `remoteenv up HOST ... --detach --no-open --json` in a fresh process, then GET /api/status
  (header `Authorization: token TOKEN`) on the printed URL until it answers 200 (polled every 10 ms).
* baseline: jupyter-forward (PyPI; install it into a venv of its own and pass its script with
  --jupyter-forward) doing the same: `jupyter-forward HOST --conda-env main --port LOCAL`, until
  it prints its URL ("Jupyter Lab URL: http://localhost:LOCAL/?token=...") and that URL answers 200 in
  the same way. It never exits (it tails Jupyter's log), so it is ended once its URL answers.

jupyter-forward activates a conda env in a login shell on the host (`bash -lc "source activate ENV &&
..."`, then `conda activate` when that fails). The host has a venv, not conda, so the host user gets
~/bin/activate (~/bin is on PATH in login shells) that puts that env's bin/ first on PATH, as conda's
`activate` script would: its first try succeeds, as on a host where conda's bin is on PATH. Everything
else is jupyter-forward's own: one paramiko connection, about ten `bash -lc` commands, `jupyter lab
--ip=$(hostname -f)`, polling its log, then a forward and a fixed 3 s sleep before it prints the URL.
That sleep is part of what its user waits for, so it counts; for reference the script also reports when
Jupyter first answered through jupyter-forward's tunnel at all (any HTTP answer, without the token, to
requests polled every 10 ms), which leaves the sleep out.

Both sides alternate run by run so drift hits both alike. This is the "my box rebooted / I stopped
Jupyter" path: one command should get there in well under the time of the usual tool. Goal: ratio at
most 0.5.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import subprocess
import threading
import time

from _common import (
    cli_env,
    free_local_port,
    jupyter_host,
    median,
    remoteenv_argv,
    report,
    run_json,
    run_ok,
    url_port_token,
    wait_status,
)

URL_LINE = re.compile(r"Jupyter Lab URL: (http://localhost:\d+/\?token=[0-9a-f]+)")
ACTIVATE = """\
# jupyter-forward runs `source activate ENV` in a login shell: put remoteenv's env first on PATH,
# as conda's own activate script would.
PATH="{envs}/${{1:-main}}/bin:$PATH"
export PATH
"""
STOP_PLAIN_JUPYTER = r"""
for f in ~/.local/share/jupyter/runtime/jpserver-*.json; do
  [ -e "$f" ] || continue
  pid=${f##*jpserver-}; pid=${pid%.json}
  kill "$pid" 2>/dev/null
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  rm -f "$f"
done
"""


def any_http_answer(port: int) -> bool:
    """Does anything answer HTTP on 127.0.0.1:port (any status: Jupyter says 403 without a token)?"""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/api/status")
        conn.getresponse().read()
        return True
    except OSError:
        return False
    finally:
        conn.close()


def jupyter_forward_once(argv: list[str], env: dict[str, str], port: int, timeout: float = 120) -> tuple[float, float]:
    """(seconds until its printed URL answered, seconds until Jupyter first answered through its tunnel)."""
    start = time.perf_counter()
    proc = subprocess.Popen([*argv, "--port", str(port)], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    found: list[str] = []
    seen = threading.Event()
    output: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            match = URL_LINE.search(line)
            if match and not found:
                found.append(match.group(1))
                seen.set()
        seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    tunnel_at = None
    try:
        deadline = start + timeout
        while not seen.is_set():
            if tunnel_at is None and any_http_answer(port):
                tunnel_at = time.perf_counter() - start
            if time.perf_counter() > deadline:
                raise SystemExit(f"jupyter-forward printed no URL within {timeout:g}s:\n{''.join(output)[-3000:]}")
            time.sleep(0.01)
        if not found:
            raise SystemExit(f"jupyter-forward exited {proc.wait()} without a URL:\n{''.join(output)[-3000:]}")
        wait_status(*url_port_token(found[0].replace("localhost", "127.0.0.1")))
        answered = time.perf_counter() - start
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return answered, answered if tunnel_at is None else tunnel_at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--jupyter-forward", default=shutil.which("jupyter-forward"),
                        help="jupyter-forward's script (default: the one on PATH)")
    args = parser.parse_args()
    if not args.jupyter_forward or not os.access(args.jupyter_forward, os.X_OK):
        raise SystemExit("no jupyter-forward: python3 -m venv /tmp/jf && /tmp/jf/bin/pip install jupyter-forward, "
                         "then --jupyter-forward /tmp/jf/bin/jupyter-forward")

    from testbed import make_testbed

    with make_testbed(1) as bed:
        host = bed.hosts[0]
        env = bed.client.env()
        penv = cli_env(env)
        up = jupyter_host(bed)
        env_path = run_json(up, penv)["env"]  # PREFIX/envs/NAME
        shim = ACTIVATE.format(envs=os.path.dirname(env_path))
        host.run(f"mkdir -p ~/bin && cat > ~/bin/activate <<'EOF'\n{shim}EOF\n")
        # A real user's jupyter-forward: its own HOME's ssh config, no browser, wide lines (its URL unwrapped).
        jf_env = {**env, "BROWSER": "true", "COLUMNS": "1000", "TERM": "dumb"}
        jf = [args.jupyter_forward, host.name, "--conda-env", os.path.basename(env_path)]

        def stop_all() -> None:
            run_ok(remoteenv_argv("down", host.name), penv)
            run_ok(remoteenv_argv("jupyter", "stop", host.name), penv)
            host.run(STOP_PLAIN_JUPYTER)

        ours, printed, theirs, their_tunnel = [], [], [], []
        for _ in range(args.runs):
            stop_all()
            start = time.perf_counter()
            row = run_json(up, penv)
            printed.append(time.perf_counter() - start)
            wait_status(*url_port_token(row["url"]))
            ours.append(time.perf_counter() - start)
            if row.get("reused"):
                raise SystemExit(f"up reused a running Jupyter: {row}")
            stop_all()
            answered, tunnel = jupyter_forward_once(jf, jf_env, free_local_port())
            theirs.append(answered)
            their_tunnel.append(tunnel)
        stop_all()
        leftovers = host.run("ps -u $(id -u) -o pid=,args= | grep -v -e ' ps ' -e '/bin/sh -c' || true").stdout
        if leftovers.strip():
            print(f"left running on the host:\n{leftovers}")

        ratio = report("cold up until the URL answers", median(ours), median(theirs),
                       "jupyter-forward until its printed URL answers", "<= 0.5")
        print(f"runs: {args.runs}; up min {min(ours) * 1000:.0f} ms, up until its JSON was printed (median) "
              f"{median(printed) * 1000:.0f} ms; jupyter-forward min {min(theirs) * 1000:.0f} ms")
        print(f"for reference: Jupyter first answered through jupyter-forward's tunnel (before its 3 s sleep ends) "
              f"after {median(their_tunnel) * 1000:.0f} ms median -> ratio {median(ours) / median(their_tunnel):.2f}")
        raise SystemExit(0 if ratio <= 0.5 else 1)


if __name__ == "__main__":
    main()
