"""Seeded, bounded fuzzing (issue 18, item 8): valid inventories of every format, playbooks and ssh
configs, mutated the way a fuzzer does, must each end in exit 0, 2 or 3 with at most one `error:`
line and one `hint:` line, never a traceback, within seconds and bounded memory.

The cases run in worker processes (one per core) that call the CLI in-process, which is fast;
each worker has an address-space limit (a blow-up is a MemoryError, not a dead machine) and a
per-case alarm (a hang is a failure naming the case). A failure prints the seed, the case and its
input, so `python tests/unit/test_fuzz.py SEED FIRST COUNT` replays it.

Nothing connects anywhere: `hosts` resolves without the network, and `export ansible` only writes
files. The mutations hold no `Match exec` or `CanonicalDomains`, which would run or look up.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("REMOTEENV_FUZZ_SEED", "18"))
CASES_PER_TARGET = int(os.environ.get("REMOTEENV_FUZZ_CASES", "100"))
CASE_SECONDS = 10  # one case; the slowest valid case takes well under a second
MEMORY_LIMIT = 2 * 1024 ** 3  # bytes of address space for a worker
OK_CODES = {0, 2, 3}

ANSIBLE_YAML = """\
all:
  vars:
    ansible_user: ubuntu
  children:
    gpu:
      hosts:
        gpu-box: {ansible_host: 198.18.0.7, ansible_port: 2222}
        a100-[01:03].lab.example.org:
      vars: {cuda: "12.4"}
    cpu:
      hosts:
        cpu-1.lab.example.org:2200:
"""

SSH_CONFIG = """\
# the person's config
Host gpu-box
    HostName 198.18.0.7
    User alice
    Port 2222
    IdentityFile ~/.ssh/id_ed25519
    ConnectTimeout 5
    ProxyJump bastion
Host bastion
    HostName bastion.example.org
    IdentitiesOnly yes
Match host *.lab
    User lab
Include conf.d/*.conf
Host *
    ServerAliveInterval 30
"""

INCLUDED = "Host extra\n    HostName 10.0.0.9\n    Port 2200\n"

# Fragments fuzzers found to matter: ranges, anchors, tags, nesting, long numbers, bad bytes,
# markup, control characters, Includes of odd files, ports in other digits.
TOKENS = [
    b"[1:999999]", b"[01:99]", b"[a:z]", b"[0:9][0:9][0:9][0:9]", b"&a ", b"*a", b"&b [*a, *a, *a]", b"<<: *a",
    b"!!map ", b"!!seq ", b"!!bool ", b"!!float ", b"!!int ", b"!!binary ", b"!!set ", b"!unsafe ", b"!vault ",
    b"2001-13-45", b"{", b"}", b"[", b"]", b"[" * 120, b"{a: " * 60, b"9" * 4400, b"0x" + b"f" * 5000,
    b"\x00", b"\xe9", b"\xff\xfe", b"\x0b", b"\x1b[31m", b"\r", b"\t", b"\xe2\x80\xa8", b":100:", b"[bold]",
    b"\xc2\xb2", b"Include config config config", b"Include /dev/zero", b"Include ~/.ssh/*", b"Include conf.d/*",
    b"Port 99999999999", b"ConnectTimeout \xc2\xb2", b"HostName %h%h%h", b"Match all", b"Host *", b"User",
    b"ansible_port=\xc2\xb2", b"ansible_port=1" + b"0" * 4400, b"ansible_group_priority=x", b"x={1j:2}",
    b"[g:children]", b"[g:vars]", b"[g]", b"hosts:", b"vars:", b"children:", b"steps:", b"- shell: ",
    b"{{ x }}", b"{{", b"}}", b"{{ x | nope }}", b"timeout: -1", b"mode: 999", b"src: /dev/zero",
    b"'", b'"', b"#", b";", b":", b"- ", b"---\n", b"...\n", b"%YAML 1.1\n", b"? ", b"@", b"=", b"~",
]


@dataclass(frozen=True)
class Target:
    name: str
    file: str  # where the mutated text goes (under the case's folder; `home/` is HOME)
    seed_text: bytes
    argv: tuple[str, ...]  # {file} is the file's path, {out} a folder to write to


def targets() -> list[Target]:
    read = lambda rel: (ROOT / rel).read_bytes()  # noqa: E731
    hosts = ("-i", "{file}", "hosts", "--json")
    return [
        Target("remoteenv-yaml", "hosts.yaml", read("configs/hosts.example.yaml"), hosts),
        Target("ansible-ini", "hosts.ini", read("configs/hosts.example.ini"), hosts),
        Target("ansible-yaml", "inventory.yml", ANSIBLE_YAML.encode(), hosts),
        Target("plain-list", "hosts.txt", read("configs/hosts.example.txt"), hosts),
        Target("ssh-config-inventory", "sshinv/config", SSH_CONFIG.encode(), hosts),
        Target("playbook", "site.yaml", read("playbooks/examples/hello.yaml"),
               ("export", "ansible", "{file}", "gpu-box", "-o", "{out}", "--json")),
        Target("workstation-playbook", "ws.yaml", read("playbooks/workstation.yaml"),
               ("export", "ansible", "{file}", "gpu-box", "-o", "{out}", "--json")),
        Target("ssh-config", "home/.ssh/config", SSH_CONFIG.encode(), ("hosts", "gpu-box", "extra", "--json")),
    ]


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to four of a fuzzer's usual edits."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        at = rng.randint(0, len(out))
        choice = rng.random()
        if choice < 0.35:
            out[at:at] = rng.choice(TOKENS)
        elif choice < 0.5 and out:
            out[min(at, len(out) - 1)] = rng.randrange(256)
        elif choice < 0.62:
            del out[at: at + rng.randint(1, 40)]
        elif choice < 0.74:
            lines = bytes(out).split(b"\n")
            i = rng.randrange(len(lines))
            lines[i:i] = [lines[i]] * rng.randint(1, 3)
            out = bytearray(b"\n".join(lines))
        elif choice < 0.84:
            lines = bytes(out).split(b"\n")
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
            out = bytearray(b"\n".join(lines))
        elif choice < 0.92:
            lines = bytes(out).split(b"\n")
            lines[rng.randrange(len(lines))] = rng.choice(TOKENS)
            out = bytearray(b"\n".join(lines))
        else:
            del out[at:]
    return bytes(out)


def cases(seed: int, count: int) -> list[tuple[int, Target, bytes]]:
    """Every target's `count` mutations, interleaved; the same seed always gives the same list."""
    rng = random.Random(seed)
    all_targets = targets()
    made = []
    for i in range(count * len(all_targets)):
        target = all_targets[i % len(all_targets)]
        made.append((i, target, mutate(target.seed_text, rng)))
    return made


# -- the worker ---------------------------------------------------------------------------------
class _Expired(Exception):
    pass


def _run_case(target: Target, data: bytes, folder: Path) -> tuple[int, str, str]:
    from remoteenv.cli.app import app
    from remoteenv.cli.errors import run_app

    path = folder / target.file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    out = folder / "out"
    argv = [arg.format(file=path, out=out) for arg in target.argv]
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = run_app(app, argv)
    return code, stdout.getvalue(), stderr.getvalue()


def problem_of(code: int, err: str, seconds: float) -> str | None:
    """What is wrong with a case's outcome, or None."""
    lines = err.splitlines()
    if code not in OK_CODES:
        return f"exit {code}"
    if "Traceback" in err or "internal error" in err:
        return "internal error"
    if seconds > CASE_SECONDS:
        return f"took {seconds:.1f}s"
    if code == 0:
        return None if all(ln.startswith(("warning: ", "hint: ")) for ln in lines) else "stderr on success"
    # Warnings (each with its hint) may come first, from files read before the one that failed.
    while len(lines) >= 2 and lines[0].startswith("warning: ") and lines[1].startswith("hint: "):
        lines = lines[2:]
    lines = [ln for ln in lines if not ln.startswith("warning: ")]
    if not lines or not lines[0].startswith("error: ") or len(lines) > 2 \
            or any(not ln.startswith("hint: ") for ln in lines[1:]):
        return "not one error line (and one hint)"
    return None


def worker(seed: int, first: int, count: int, stride: int = 1) -> list[dict]:
    """Run cases first, first+stride, ... (up to `count` of them); return the failing ones."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    def expired(signum, frame):
        raise _Expired()

    signal.signal(signal.SIGALRM, expired)
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        home = base / "home"
        (home / ".ssh" / "conf.d").mkdir(parents=True)
        os.environ.update(HOME=str(home), REMOTEENV_CONFIG_DIR=str(base / "config"),
                          REMOTEENV_STATE_DIR=str(base / "state"), COLUMNS="200")
        for name in ("REMOTEENV_INVENTORY", "REMOTEENV_SSH_CONFIG", "REMOTEENV_DEBUG"):
            os.environ.pop(name, None)
        os.chdir(base)
        all_cases = cases(seed, CASES_PER_TARGET)
        for index, target, data in all_cases[first::stride][:count]:
            (home / ".ssh" / "config").unlink(missing_ok=True)
            (home / ".ssh" / "conf.d" / "extra.conf").write_text(INCLUDED)
            start = time.perf_counter()
            signal.alarm(CASE_SECONDS)
            try:
                code, _, err = _run_case(target, data, base)
            except _Expired:
                code, err = -1, f"no answer within {CASE_SECONDS}s"
            except BaseException as exc:  # SystemExit, MemoryError, a bug of the harness
                code, err = -1, f"{type(exc).__name__}: {exc}"
            finally:
                signal.alarm(0)
            seconds = time.perf_counter() - start
            problem = problem_of(code, err, seconds)
            if problem:
                failures.append({"seed": seed, "case": index, "target": target.name, "problem": problem,
                                 "code": code, "stderr": err[-600:], "input": repr(data)[:1500]})
    return failures


# -- the test -----------------------------------------------------------------------------------
def test_mutated_inputs_fail_cleanly():
    workers = max(1, min(4, os.cpu_count() or 1))
    total = CASES_PER_TARGET * len(targets())
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    started = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, __file__, str(SEED), str(i), str(total), str(workers)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for i in range(workers)]
    failures: list[dict] = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("a fuzz worker hung past the per-case alarm (C code that never returns?)")
        assert proc.returncode == 0, f"fuzz worker died ({proc.returncode}): {err[-2000:]}"
        failures += json.loads(out)
    took = time.perf_counter() - started
    print(f"\nfuzz: {total} cases (seed {SEED}) in {took:.1f}s on {workers} workers, {len(failures)} failing")
    assert not failures, "\n".join(json.dumps(f) for f in failures[:10])


if __name__ == "__main__":
    # Worker: test_fuzz.py SEED FIRST COUNT [STRIDE] -> JSON list of failing cases on stdout.
    seed_, first_, count_ = (int(v) for v in sys.argv[1:4])
    stride_ = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    sys.path[:0] = [str(ROOT)]
    result = worker(seed_, first_, count_, stride_)
    sys.stdout.write(json.dumps(result))
