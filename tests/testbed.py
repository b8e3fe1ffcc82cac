"""Throwaway SSH hosts for integration tests.

Two ways to make hosts, chosen by ``make_testbed(mode=...)``:

* ``"netns"`` (root with ``ip``): every host is a Linux network namespace on a
  private bridge inside the test range 198.18.0.0/15, with its own Unix user
  and Debian's real sshd listening on port 22 of the host address.  Each
  testbed owns one /24 (198.18.<slot>.0/24), so concurrent testbeds (pytest-xdist
  workers, or several in one process) never collide.
* ``"local"`` (anyone): every host is an sshd running as the current user on
  127.0.0.1 with a free high port.  Such an sshd can only log in as the user
  running it, so all hosts share that user.  ``$HOME`` in a session is the
  host's own directory (set by sshd's SetEnv), but the session starts in the
  user's real home directory, because sshd always changes into the passwd home.

``"auto"`` (the default) picks ``"netns"`` when possible, else ``"local"``;
under CI=true it never falls back (CI must have what namespace mode needs).
Missing prerequisites raise :class:`TestbedUnavailable`, which the pytest
fixtures turn into a skip (or a failure when CI=true).

Everything a testbed makes is recorded in a state file under a lock held for
the testbed's lifetime; ``close()`` removes it all, and a later testbed removes
what a crashed process left behind (its lock is free while its state remains).

Good to know when writing tests:

* Hosts share this machine's filesystem and programs (``python3`` is
  /usr/bin/python3); only homes, users and network are their own.  Host users
  have no sudo, unless ``add_hosts(sudo=[...])`` gives it.
* A host with GPUs gets the stand-in tests/fakes/nvidia-smi in ~/bin, which is
  on PATH in ssh sessions (sshd SetEnv) and in login shells (~/.profile).
* The ssh client finds ``~`` through the passwd entry, not $HOME, so plain
  ``ssh h01`` does not read the client config: use ``Testbed.ssh_argv`` (which
  passes ``-F``).  Libraries such as paramiko and asyncssh do follow $HOME,
  so ``ClientSide.env()`` is enough for them.
* In namespace mode the machine reaches hosts through the bridge; hosts reach
  each other and the machine at ``Testbed.gateway``, and nothing else.
* Sign-in other than by key, sudo and sshd drop-ins are per host options of
  ``add_hosts`` (namespace mode only; see :class:`HostOptions`): ``auth`` is
  "password" (sshd's own password check of ``host.password``), "kbdint"
  (keyboard-interactive through PAM, answered with ``host.password``) or "2fa"
  (``AuthenticationMethods publickey,keyboard-interactive``, the one prompt
  answered with ``host.code``).  PAM hosts run sshd through a symlink named
  ``sshd-rtb<slot>-<host>``: sshd names its PAM service after its program, so
  the stack is /etc/pam.d/sshd-rtb<slot>-<host>, written by the testbed and
  removed with it.  ``host.prompts_answered()`` counts the prompts answered.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import fcntl
import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

TEST_RANGE = "198.18.0.0/15"
# Names of everything made in namespace mode start with this and the slot number:
# namespaces and users "rtb<slot>-<host>", links "rtb<slot>br" and "rtb<slot>v<i>".
NAME_PREFIX = "rtb"
MAX_SLOT = 254
# Host i (from 1) gets the address 198.18.<slot>.(10 + i).
FIRST_HOST_OCTET = 10
MAX_HOSTS = 254 - FIRST_HOST_OCTET
HOST_SHELL = "/bin/bash"
DOWN_MODES = ("nosshd", "cut")
AUTH_MODES = ("key", "password", "kbdint", "2fa")
PAM_DIR = Path("/etc/pam.d")
SUDOERS_DIR = Path("/etc/sudoers.d")
# The PAM program of kbdint and 2fa hosts. pam_exec's expose_authtok writes the answer to its stdin
# (ended by a NUL byte); `count` only records that a prompt was answered (pam_unix checks it),
# `code` also checks it against the one-time code file.
PAM_CHECK = """\
#!/bin/sh
answer=$(tr -d '\\000')
printf '%s\\n' "$PAM_SERVICE" >>{log}
case $1 in
    count) exit 0 ;;
    code) [ -n "$answer" ] && [ "$answer" = "$(cat {code})" ] ;;
    *) exit 1 ;;
esac
"""
PAM_TAIL = """\
account required pam_permit.so
session required pam_permit.so
password required pam_deny.so
"""
FAKE_NVIDIA_SMI = Path(__file__).resolve().parent / "fakes" / "nvidia-smi"
SSHD_START_TIMEOUT = 30.0
# Set in local-mode sessions so that close() can find what they started.
MARKER_VARIABLE = "REMOTEENV_TESTBED_DIR"
# Tools live in sbin directories that a non-root PATH often lacks.
TOOL_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Debian's ~/.profile adds ~/bin for login shells; hosts get the same, since
# /etc/profile resets PATH and would otherwise hide the stand-in nvidia-smi.
PROFILE = """\
# set PATH so it includes the user's private bin if it exists
if [ -d "$HOME/bin" ] ; then
    PATH="$HOME/bin:$PATH"
fi
"""


class TestbedUnavailable(RuntimeError):
    """This machine lacks something the testbed needs (sshd, ip, privileges)."""


class HostCommandError(subprocess.CalledProcessError):
    """A command run by TestHost.run failed; the message includes its output."""

    def __str__(self) -> str:
        return (
            f"{super().__str__()}\n--- stdout ---\n{self.stdout}"
            f"--- stderr ---\n{self.stderr}"
        )


def _tool(name: str) -> str:
    """Absolute path of a program (sshd re-executes itself and needs one)."""
    search = os.environ.get("PATH", "") + os.pathsep + TOOL_PATH
    found = shutil.which(name, path=search)
    if not found:
        raise TestbedUnavailable(f"{name} not found (looked in {search})")
    return os.path.abspath(found)


def _run(argv: list[str], *, input: str | None = None) -> str:
    """Run a setup command; raise with its output when it fails."""
    proc = subprocess.run(
        argv, input=input, capture_output=True, text=True,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}"
        )
    return proc.stdout


# ---------------------------------------------------------------- keys


def _keygen(path: Path) -> str:
    """Make a passphrase-less ed25519 key; return its public line "ssh-ed25519 AAAA..."."""
    _run([_tool("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(path)])
    kind, blob = path.with_name(path.name + ".pub").read_text().split()[:2]
    return f"{kind} {blob}"


def _fingerprint(public_line: str) -> str:
    """OpenSSH's SHA256 fingerprint, computed as ssh-keygen -l does."""
    blob = base64.b64decode(public_line.split()[1])
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def _known_hosts_name(address: str, port: int) -> str:
    return address if port == 22 else f"[{address}]:{port}"


# ---------------------------------------------------------------- hosts


@dataclass
class TestHost:
    """One test host.  ``down`` tracks its state: None, "nosshd" or "cut"."""

    __test__ = False  # not a pytest test class, despite the name

    name: str
    address: str
    port: int
    user: str
    home: Path
    netns: str | None
    gpus: int
    down: str | None
    host_key_fingerprint: str = ""
    host_key_line: str = ""
    # Per host options (see HostOptions); the defaults are a key-only host as every test had.
    auth: str = "key"
    sudo: bool = False
    # The user's password (auth "password" and "kbdint"; None: the account has none).
    password: str | None = None
    # auth "2fa": the file holding the one-time code the keyboard-interactive prompt asks for.
    code_file: Path | None = None
    # auth "kbdint" and "2fa": one line per keyboard-interactive prompt answered (right or wrong).
    prompt_log: Path | None = None
    # The drop-in folder its sshd_config Includes first (`Include <dir>/*.conf`), if any.
    dropin_dir: Path | None = None
    # What the testbed needs to manage the host; not part of its description.
    _gateway: str = field(default="", repr=False, compare=False)
    _sshd_dir: Path | None = field(default=None, repr=False, compare=False)
    _sshd_config: str = field(default="", repr=False, compare=False)
    _proc: subprocess.Popen | None = field(default=None, repr=False, compare=False)
    _env: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    # The program sshd runs as: a symlink whose name is the PAM service, for PAM hosts.
    _sshd_program: str = field(default="", repr=False, compare=False)
    _sshd_options: tuple[str, ...] = field(default=(), repr=False, compare=False)

    # -- sign-in

    @property
    def code(self) -> str:
        """The one-time code a "2fa" host's keyboard-interactive prompt accepts now."""
        if self.code_file is None:
            raise ValueError(f"{self.name} asks for no code (auth {self.auth!r})")
        return self.code_file.read_text().strip()

    def set_code(self, code: str) -> None:
        """Make `code` the one the host accepts from now on (the old one stops working)."""
        if self.code_file is None:
            raise ValueError(f"{self.name} asks for no code (auth {self.auth!r})")
        _write(self.code_file, code + "\n", 0o600)

    def prompts_answered(self) -> int:
        """How many keyboard-interactive prompts sshd's PAM stack has been answered so far."""
        if self.prompt_log is None:
            raise ValueError(f"{self.name} has no keyboard-interactive sign-in (auth {self.auth!r})")
        try:
            return len(self.prompt_log.read_text().splitlines())
        except FileNotFoundError:
            return 0

    @property
    def sshd_config_path(self) -> Path:
        """The sshd_config its sshd runs with (root-only, outside /etc/ssh)."""
        return Path(self._sshd_config)

    def sshd_log(self) -> str:
        """Everything its sshd logged (-e), for failure messages."""
        try:
            return (self._sshd_dir / "sshd.log").read_text(errors="replace")
        except (FileNotFoundError, TypeError):
            return ""

    # -- network

    def cut_link(self) -> None:
        """Make the host unreachable, as if its cable were pulled.

        Namespace mode downs eth0 inside the namespace (routes elsewhere are
        never touched).  Local mode stops sshd, so connections hang instead.
        """
        if self.netns:
            _run([_tool("ip"), "-n", self.netns, "link", "set", "eth0", "down"])
        elif self._proc:
            self._proc.send_signal(signal.SIGSTOP)
        if self.down is None:
            self.down = "cut"

    def restore_link(self) -> None:
        """Undo cut_link."""
        if self.netns:
            # Downing a link drops the routes through it; the default route
            # has to come back with the link.
            batch = f"link set eth0 up\nroute replace default via {self._gateway}\n"
            _run([_tool("ip"), "-n", self.netns, "-batch", "-"], input=batch)
        elif self._proc:
            self._proc.send_signal(signal.SIGCONT)
        if self.down == "cut":
            self.down = None

    # -- commands

    def run(self, cmd: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a shell command on the host as its user, with the environment an
        ssh session gets, and capture its text output.

        Background processes must redirect their output, or this waits for them.
        """
        if self.netns:
            argv = [
                _tool("ip"), "netns", "exec", self.netns,
                _tool("setpriv"), f"--reuid={self.user}", f"--regid={self.user}",
                "--init-groups", "--", "env", "-i",
                *(f"{k}={v}" for k, v in self._env.items()),
                "/bin/sh", "-c", cmd,
            ]
            env = None
        else:
            argv, env = ["/bin/sh", "-c", cmd], self._env
        proc = subprocess.run(
            argv, cwd=self.home, env=env, capture_output=True, text=True,
            stdin=subprocess.DEVNULL, timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise HostCommandError(proc.returncode, cmd, proc.stdout, proc.stderr)
        return proc

    def processes(self, check: bool = True) -> str:
        """The command lines of this host's user's processes, one a line. The test hosts share the
        machine's process table: `ps -e` would show every other host's commands too."""
        return self.run("ps -u $(id -u) -o args=", check=check).stdout

    # -- sshd

    def regenerate_host_key(self) -> None:
        """Give the host a new host key and restart its sshd.

        The client's known_hosts keeps the old key (that is what "changed host
        key" tests need); Testbed.write_known_hosts() trusts the new one.
        """
        running = self._proc is not None
        self._stop_sshd()
        key = self._sshd_dir / "ssh_host_ed25519_key"
        for path in (key, key.with_name(key.name + ".pub")):
            path.unlink(missing_ok=True)
        self._set_host_key(_keygen(key))
        if running:
            self._start_sshd()
            if self.down == "cut" and not self.netns:
                self._proc.send_signal(signal.SIGSTOP)  # stay cut

    def _set_host_key(self, public_line: str) -> None:
        self.host_key_fingerprint = _fingerprint(public_line)
        self.host_key_line = f"{_known_hosts_name(self.address, self.port)} {public_line}"

    def _start_sshd(self) -> None:
        argv = [self._sshd_program or _tool("sshd"), "-D", "-e", "-f", self._sshd_config]
        if self.netns:
            argv = [_tool("ip"), "netns", "exec", self.netns, *argv]
        log_path = self._sshd_dir / "sshd.log"
        with open(log_path, "ab") as log:
            start = log.tell()
            # A session of its own, so Ctrl-C at a terminal reaches only us;
            # close() takes sshd down.
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True,
            )
        self._wait_listening(log_path, start)

    def _wait_listening(self, log_path: Path, start: int) -> None:
        """Wait for sshd to log that it listens, which it does right after listen().

        Watching the log rather than connecting also works while the link is cut.
        """
        deadline = time.monotonic() + SSHD_START_TIMEOUT
        while True:
            with open(log_path, "rb") as log:
                log.seek(start)
                text = log.read().decode(errors="replace")
            if "Server listening on" in text:
                return
            if self._proc.poll() is not None:
                raise RuntimeError(f"sshd of {self.name} exited: {text[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"sshd of {self.name} not listening after {SSHD_START_TIMEOUT}s")
            time.sleep(0.005)

    def _stop_sshd(self) -> None:
        if self._proc is None:
            return
        self._proc.kill()
        # A stopped process only dies once continued.
        with contextlib.suppress(ProcessLookupError):
            self._proc.send_signal(signal.SIGCONT)
        self._proc.wait()
        self._proc = None


# ---------------------------------------------------------------- client


@dataclass
class ClientSide:
    """A client HOME with a key every host accepts and an ssh config naming the hosts.

    ssh itself finds ~ through the passwd entry, not $HOME, so the config sets
    every file by absolute path; use ``ssh -F ssh_config`` (Testbed.ssh_argv).
    """

    home: Path
    key: Path
    ssh_config: Path
    known_hosts: Path

    def env(self) -> dict[str, str]:
        """os.environ with HOME pointing here and nothing tying it to the real home."""
        env = dict(os.environ)
        env["HOME"] = str(self.home)
        for name in (
            "SSH_AUTH_SOCK", "SSH_AGENT_PID", "SSH_ASKPASS", "SSH_ASKPASS_REQUIRE", "DISPLAY",
            "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME",
        ):
            env.pop(name, None)
        return env

    def public_key(self) -> str:
        return self.key.with_name(self.key.name + ".pub").read_text().strip()

    def write_config(self, hosts: list[TestHost]) -> None:
        blocks = [
            f"Host {h.name}\n"
            f"    HostName {h.address}\n"
            f"    User {h.user}\n"
            f"    Port {h.port}\n"
            f"    IdentityFile {self.key}\n"
            f"    IdentitiesOnly yes\n"
            for h in hosts
        ]
        # Defaults that keep tests from prompting or from reading the real
        # home's files; command-line -o options still override them.
        blocks.append(
            "Host *\n"
            f"    UserKnownHostsFile {self.known_hosts}\n"
            "    GlobalKnownHostsFile /dev/null\n"
            "    BatchMode yes\n"
            "    ConnectTimeout 10\n"
        )
        _write(self.ssh_config, "\n".join(blocks), 0o600)

    def write_known_hosts(self, hosts: list[TestHost]) -> None:
        _write(self.known_hosts, "".join(f"{h.host_key_line}\n" for h in hosts), 0o644)


def _make_client(home: Path) -> ClientSide:
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(parents=True, mode=0o700)
    os.chmod(home, 0o700)
    client = ClientSide(
        home=home, key=ssh_dir / "id_ed25519",
        ssh_config=ssh_dir / "config", known_hosts=ssh_dir / "known_hosts",
    )
    _keygen(client.key)
    client.write_config([])
    client.write_known_hosts([])
    return client


def _write(path: Path, text: str, mode: int) -> None:
    path.write_text(text)
    os.chmod(path, mode)


# ---------------------------------------------------------------- slots and state


def _state_dir() -> Path:
    """Where slot locks and state files live: shared by all root testbeds, else per user."""
    if os.geteuid() == 0:
        path = Path("/run/remoteenv-testbed")
        path.mkdir(mode=0o755, exist_ok=True)
        return path
    path = Path(tempfile.gettempdir()) / f"remoteenv-testbed-{os.geteuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    if path.is_symlink() or path.stat().st_uid != os.geteuid():
        raise TestbedUnavailable(f"{path} belongs to someone else")
    return path


@contextlib.contextmanager
def _flocked(path: Path):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@dataclass
class _Resources:
    """Everything one testbed made, by name, so that any process can remove it."""

    slot: int
    mode: str
    pid: int = field(default_factory=os.getpid)
    dir: str | None = None
    netns: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    # Files outside the testbed's directory: PAM services and sudoers drop-ins of its hosts.
    files: list[str] = field(default_factory=list)


class _Slot:
    """A slot number held by an flock for as long as its testbed lives.

    The kernel drops the lock when the owner dies, so "lock free but state
    file present" means leftovers of a crashed run.
    """

    def __init__(self, state_dir: Path, number: int, fd: int):
        self.number, self._fd = number, fd
        self.state_path = state_dir / f"slot{number}.json"

    def save(self, res: _Resources) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(res)))
        tmp.replace(self.state_path)

    def release(self, forget: bool) -> None:
        if forget:
            self.state_path.unlink(missing_ok=True)
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _claim_slot() -> _Slot:
    """Take the lowest free slot, first removing leftovers of dead testbeds."""
    state_dir = _state_dir()
    with _flocked(state_dir / "alloc.lock"):
        orphans = _orphans_by_slot()
        claimed = None
        for number in range(1, MAX_SLOT + 1):
            state_path = state_dir / f"slot{number}.json"
            if claimed and not state_path.exists() and number not in orphans:
                continue
            fd = _try_lock(state_dir / f"slot{number}.lock")
            if fd is None:
                continue
            if not _remove_leftovers(state_path, orphans.get(number)):
                os.close(fd)
                continue
            if claimed is None:
                claimed = _Slot(state_dir, number, fd)
            else:
                os.close(fd)
        if claimed is None:
            raise TestbedUnavailable(f"all {MAX_SLOT} testbed slots are in use")
        return claimed


def _orphans_by_slot() -> dict[int, _Resources]:
    """Namespaces, links and users named like ours, grouped by slot (root only).

    Covers leftovers whose state file is gone, e.g. users after a reboot
    emptied /run.
    """
    if os.geteuid() != 0:
        return {}
    found: dict[int, _Resources] = {}

    def add(kind: str, name: str, pattern: str) -> None:
        match = re.fullmatch(pattern, name)
        if match:
            number = int(match.group(1))
            res = found.setdefault(number, _Resources(slot=number, mode="netns"))
            getattr(res, kind).append(name)

    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir("/run/netns"):
            add("netns", name, rf"{NAME_PREFIX}(\d+)-.+")
    for name in os.listdir("/sys/class/net"):
        add("links", name, rf"{NAME_PREFIX}(\d+)(?:br|v\d+)")
    for entry in pwd.getpwall():
        add("users", entry.pw_name, rf"{NAME_PREFIX}(\d+)-.+")
    for folder, pattern in ((PAM_DIR, rf"sshd-{NAME_PREFIX}(\d+)-.+"), (SUDOERS_DIR, rf"{NAME_PREFIX}(\d+)-.+")):
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(folder):
                match = re.fullmatch(pattern, name)
                if match:
                    res = found.setdefault(int(match.group(1)), _Resources(slot=int(match.group(1)), mode="netns"))
                    res.files.append(str(folder / name))
    return found


def _remove_leftovers(state_path: Path, orphans: _Resources | None) -> bool:
    """Remove what a dead testbed left in a slot; False if some of it stays."""
    res = None
    with contextlib.suppress(FileNotFoundError, ValueError, TypeError):
        res = _Resources(**json.loads(state_path.read_text()))
    if res is None and orphans is None:
        return True
    res = res or _Resources(slot=orphans.slot, mode="netns")
    if orphans:
        res.netns = sorted(set(res.netns) | set(orphans.netns))
        res.links = sorted(set(res.links) | set(orphans.links))
        res.users = sorted(set(res.users) | set(orphans.users))
        res.files = sorted(set(res.files) | set(orphans.files))
    try:
        _teardown(res, [])
    except (OSError, RuntimeError) as error:
        warnings.warn(f"testbed slot {res.slot}: leftovers stay: {error}", stacklevel=2)
        return False
    state_path.unlink(missing_ok=True)
    return True


# ---------------------------------------------------------------- teardown


def _teardown(res: _Resources, procs: list[subprocess.Popen]) -> None:
    """Remove everything recorded in res; safe to repeat."""
    _kill_processes(res, procs)
    _delete_links_and_namespaces(res)
    for path in res.files:
        # sudoers and PAM files first: a user name may be given again to a later testbed's host.
        Path(path).unlink(missing_ok=True)
    _delete_users(res.users)
    if res.dir:
        shutil.rmtree(res.dir, ignore_errors=True)
        if os.path.exists(res.dir):
            raise RuntimeError(f"could not remove {res.dir}")


def _kill_processes(res: _Resources, procs: list[subprocess.Popen]) -> None:
    """SIGKILL every process of the testbed until none is left.

    Processes belong to it when they run in one of its namespaces, as one of
    its users, mention its directory (sshd's command line, local sessions'
    environment), or descend from such a process.
    """
    uids = set()
    for user in res.users:
        with contextlib.suppress(KeyError):
            uids.add(pwd.getpwnam(user).pw_uid)
    namespaces = set()
    for name in res.netns:
        with contextlib.suppress(FileNotFoundError):
            namespaces.add(os.stat(f"/run/netns/{name}").st_ino)
    marker = res.dir.encode() if res.dir else None
    deadline = time.monotonic() + 15
    while True:
        pids = _matching_pids(uids, namespaces, marker)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        for proc in procs:
            proc.poll()  # reap sshd listeners we started, so they vanish
        if not pids:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes survive SIGKILL: {sorted(pids)}")
        time.sleep(0.01)
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def _read_proc(pid: str, name: str) -> bytes:
    try:
        with open(f"/proc/{pid}/{name}", "rb") as f:
            return f.read()
    except OSError:
        return b""


def _matching_pids(uids: set[int], namespaces: set[int], marker: bytes | None) -> set[int]:
    parents: dict[int, int] = {}
    matched: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        status = _read_proc(entry, "status").decode(errors="replace")
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if not fields or fields.get("State", "").startswith("Z"):
            continue  # gone, or a zombie waiting for its parent
        pid = int(entry)
        parents[pid] = int(fields.get("PPid", "0"))
        if int(fields.get("Uid", "-1").split()[0]) in uids:
            matched.add(pid)
            continue
        if namespaces:
            with contextlib.suppress(OSError):
                if os.stat(f"/proc/{entry}/ns/net").st_ino in namespaces:
                    matched.add(pid)
                    continue
        if marker and (marker in _read_proc(entry, "cmdline") or marker in _read_proc(entry, "environ")):
            matched.add(pid)
    # Descendants too: local-mode sshd sessions carry neither marker nor user.
    changed = True
    while changed:
        changed = False
        for pid, parent in parents.items():
            if parent in matched and pid not in matched:
                matched.add(pid)
                changed = True
    return matched - _self_and_ancestors()


def _self_and_ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        status = _read_proc(str(pid), "status").decode(errors="replace")
        match = re.search(r"^PPid:\t(\d+)", status, re.M)
        pid = int(match.group(1)) if match else 0
    return pids


def _delete_links_and_namespaces(res: _Resources) -> None:
    # Deleting the root-side veth ends first removes their namespace ends too,
    # synchronously, so nothing lingers after close() returns.
    lines = [f"link del {name}" for name in sorted(res.links, key=lambda n: n.endswith("br"))
             if os.path.exists(f"/sys/class/net/{name}")]
    lines += [f"netns del {name}" for name in res.netns if os.path.exists(f"/run/netns/{name}")]
    if lines:
        _run([_tool("ip"), "-force", "-batch", "-"], input="\n".join(lines) + "\n")


_PASSWD_LOCK = threading.Lock()


def _delete_users(users: list[str]) -> None:
    for user in users:
        with contextlib.suppress(KeyError):
            pwd.getpwnam(user)
            with _PASSWD_LOCK:
                # -f: a process killed a moment ago may still be listed.
                _passwd_tool(["userdel", "-f", user])


def _passwd_tool(argv: list[str]) -> None:
    """Run useradd/userdel, retrying while another process holds /etc/passwd."""
    for _ in range(100):
        proc = subprocess.run([_tool(argv[0]), *argv[1:]], capture_output=True, text=True)
        if proc.returncode == 0:
            return
        if "lock" not in proc.stderr:
            break
        time.sleep(0.05)
    raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")


# ---------------------------------------------------------------- the testbed


def _pick_mode(mode: str) -> str:
    if mode not in ("auto", "netns", "local"):
        raise ValueError(f"mode must be auto, netns or local, not {mode!r}")
    _tool("sshd")
    _tool("ssh-keygen")
    _tool("ssh")
    if mode == "local":
        return mode
    needed = ("ip", "setpriv", "useradd", "userdel")
    missing = [name for name in needed if not shutil.which(name, path=TOOL_PATH)]
    if os.geteuid() == 0 and not missing:
        return "netns"
    why = "needs root" if os.geteuid() != 0 else f"lacks {', '.join(missing)}"
    if mode == "netns":
        raise TestbedUnavailable(f"namespace mode {why}")
    if _in_ci():
        # CI has every prerequisite; a quiet fallback there would skip every test that needs
        # hosts of their own (needs_netns) and hide the broken setup.
        raise TestbedUnavailable(f"namespace mode {why}, and CI=true allows no fallback to local mode")
    return "local"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _ensure_blackhole_route() -> None:
    """Route the whole test range nowhere, so no test packet ever leaves the machine.

    The bridges' /24 routes are more specific and win for live testbeds.
    """
    ip = _tool("ip")
    existing = _run([ip, "route", "show", "exact", TEST_RANGE])
    if "blackhole" in existing:
        return
    if existing.strip():
        raise TestbedUnavailable(f"{TEST_RANGE} is routed elsewhere: {existing.strip()}")
    proc = subprocess.run([ip, "route", "add", "blackhole", TEST_RANGE], capture_output=True, text=True)
    if proc.returncode != 0 and "File exists" not in proc.stderr:
        raise TestbedUnavailable(f"cannot add blackhole route: {proc.stderr.strip()}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class HostOptions:
    """What add_hosts can make differently on one host (namespace mode only).

    auth: "key" (the default: key only, as every host had), "password" (sshd's own password check,
          no PAM), "kbdint" (keyboard-interactive through PAM, one "Password: " prompt checked by
          pam_unix) or "2fa" (`AuthenticationMethods publickey,keyboard-interactive`; the one prompt
          wants the one-time code in host.code_file). "password" and "kbdint" users get a random
          password (host.password), set with chpasswd.
    sudo: the host's user may run anything with `sudo -n` (a sudoers drop-in, removed at close).
    keyless: no ~/.ssh at all (so no key is authorized); the client key works only once added.
    dropin: sshd_config starts with `Include <host dir>/sshd_config.d/*.conf` (host.dropin_dir).
    sshd_options: more sshd_config lines, written after all others (Match blocks go here).
    """

    auth: str = "key"
    sudo: bool = False
    keyless: bool = False
    dropin: bool = False
    sshd_options: tuple[str, ...] = ()

    @property
    def plain(self) -> bool:
        return self == HostOptions()


@dataclass
class _HostSpec:
    name: str
    index: int
    gpus: int
    down: str | None
    options: HostOptions = field(default_factory=HostOptions)


class Testbed:
    """A set of SSH hosts plus a client side that can reach them all."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, *, mode: str = "auto", known: bool = True, prefix: str = "h"):
        if not re.fullmatch(r"[a-z][a-z0-9]{0,15}", prefix):
            # Host names become parts of user and namespace names.
            raise ValueError(f"prefix must be 1-16 lowercase letters or digits, not {prefix!r}")
        self.mode = _pick_mode(mode)
        self.known = known
        self.prefix = prefix
        self.hosts: list[TestHost] = []
        self._closed = False
        self._close_lock = threading.Lock()
        self._slot = _claim_slot()
        self._res = _Resources(slot=self._slot.number, mode=self.mode)
        atexit.register(self.close)
        try:
            self._setup()
        except BaseException:
            self.close()
            raise

    @property
    def slot(self) -> int:
        return self._slot.number

    @property
    def dir(self) -> Path:
        """The testbed's own directory: homes, sshd files, client side."""
        return Path(self._res.dir)

    @property
    def gateway(self) -> str:
        """The address hosts use to reach the machine running the tests."""
        return self._subnet(1) if self.mode == "netns" else "127.0.0.1"

    @property
    def bridge(self) -> str | None:
        return f"{NAME_PREFIX}{self.slot}br" if self.mode == "netns" else None

    def _subnet(self, last: int) -> str:
        return f"198.18.{self.slot}.{last}"

    def _mac(self, index: int) -> str:
        """A locally administered MAC for host index (0: the bridge)."""
        return f"02:72:74:{self.slot:02x}:{index >> 8:02x}:{index & 0xFF:02x}"

    def _save(self) -> None:
        self._slot.save(self._res)

    def _setup(self) -> None:
        directory = Path(tempfile.mkdtemp(prefix=f"remoteenv-testbed-{self.slot}-"))
        self._res.dir = str(directory)
        self._save()
        # Host users must reach their homes inside this directory.
        os.chmod(directory, 0o711)
        for sub in ("home", "sshd"):
            (directory / sub).mkdir(mode=0o711)
        if self.mode == "netns":
            self._setup_bridge()
        # Root sshd needs its privilege-separation directory.
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self.client = _make_client(directory / "client")

    def _setup_bridge(self) -> None:
        _ensure_blackhole_route()
        self._res.links.append(self.bridge)
        self._save()
        batch = (
            # A fixed MAC: a bridge otherwise takes its lowest port's, which
            # changes as hosts are added.
            f"link add {self.bridge} address {self._mac(0)} type bridge\n"
            f"addr add {self.gateway}/24 dev {self.bridge}\n"
            f"link set {self.bridge} up\n"
        )
        try:
            _run([_tool("ip"), "-batch", "-"], input=batch)
        except RuntimeError as error:
            if "Operation not permitted" in str(error):
                raise TestbedUnavailable(str(error)) from None
            raise
        # Never route host traffic onwards, even if this machine forwards IP.
        Path(f"/proc/sys/net/ipv4/conf/{self.bridge}/forwarding").write_text("0")

    # -- hosts

    def add_hosts(self, n: int, *, gpus: int | list[int] = 0,
                  down: dict[str, str] | None = None, auth: dict[str, str] | None = None,
                  sudo: list[str] | None = None, keyless: list[str] | None = None,
                  dropin: list[str] | None = None,
                  sshd_options: dict[str, list[str]] | None = None) -> list[TestHost]:
        """Make n more hosts, named after the existing ones; return them.

        auth, sudo, keyless, dropin and sshd_options set HostOptions per host name, e.g.
        ``auth={"h01": "password"}, sudo=["h01"], keyless=["h01"]``. dropin defaults to the
        hosts given sudo (what `keys harden` needs); pass a list (``[]``) to choose.
        """
        specs = self._specs(n, gpus, down or {})
        specs = self._with_options(specs, auth or {}, sudo or [], keyless or [],
                                   list(sudo or []) if dropin is None else dropin, sshd_options or {})
        if self.mode == "netns":
            self._setup_namespaces(specs)
            make = self._make_netns_host
        else:
            make = self._make_local_host
        pool = ThreadPoolExecutor(max_workers=min(16, max(1, n)))
        try:
            new = list(pool.map(make, specs))
        finally:
            # On failure or Ctrl-C, start no more hosts; close() removes the rest.
            pool.shutdown(wait=True, cancel_futures=True)
        self.hosts.extend(new)
        self.client.write_config(self.hosts)
        if self.known:
            self.client.write_known_hosts(self.hosts)
        return new

    def _specs(self, n: int, gpus: int | list[int], down: dict[str, str]) -> list[_HostSpec]:
        first = len(self.hosts) + 1
        if first - 1 + n > MAX_HOSTS:
            raise ValueError(f"at most {MAX_HOSTS} hosts per testbed")
        counts = list(gpus) if isinstance(gpus, (list, tuple)) else [gpus] * n
        if len(counts) != n:
            raise ValueError(f"gpus lists {len(counts)} counts for {n} hosts")
        names = [f"{self.prefix}{i:02d}" for i in range(first, first + n)]
        unknown = set(down) - set(names)
        bad = {v for v in down.values() if v not in DOWN_MODES}
        if unknown or bad:
            raise ValueError(f"down: unknown hosts {sorted(unknown)} or modes {sorted(bad)}")
        return [_HostSpec(name, first + k, counts[k], down.get(name)) for k, name in enumerate(names)]

    def _with_options(self, specs: list[_HostSpec], auth: dict[str, str], sudo: list[str],
                      keyless: list[str], dropin: list[str], sshd_options: dict[str, list[str]]) -> list[_HostSpec]:
        names = {spec.name for spec in specs}
        unknown = (set(auth) | set(sudo) | set(keyless) | set(dropin) | set(sshd_options)) - names
        if unknown:
            raise ValueError(f"host options name unknown hosts {sorted(unknown)}")
        bad = {v for v in auth.values() if v not in AUTH_MODES}
        if bad:
            raise ValueError(f"auth modes {sorted(bad)}: each is one of {', '.join(AUTH_MODES)}")
        out = []
        for spec in specs:
            options = HostOptions(auth=auth.get(spec.name, "key"), sudo=spec.name in sudo,
                                  keyless=spec.name in keyless, dropin=spec.name in dropin,
                                  sshd_options=tuple(sshd_options.get(spec.name, ())))
            if not options.plain and self.mode != "netns":
                # PAM, sudo and passwords need root and a Unix user per host.
                raise TestbedUnavailable(f"host options ({spec.name}: {options}) need namespace mode")
            out.append(_HostSpec(spec.name, spec.index, spec.gpus, spec.down, options))
        # Recorded before they exist, so that a crash leaves a complete record (like users).
        for spec in out:
            if spec.options.auth in ("kbdint", "2fa"):
                self._res.files.append(str(PAM_DIR / self._pam_service(spec)))
            if spec.options.sudo:
                self._res.files.append(str(SUDOERS_DIR / self._netns_name(spec)))
        self._save()
        return out

    def _pam_service(self, spec: _HostSpec) -> str:
        return f"sshd-{self._netns_name(spec)}"

    def _setup_namespaces(self, specs: list[_HostSpec]) -> None:
        """Make every namespace and veth pair in one ip call (the cheap part)."""
        lines = []
        for spec in specs:
            ns, veth = self._netns_name(spec), f"{NAME_PREFIX}{self.slot}v{spec.index}"
            self._res.netns.append(ns)
            self._res.links.append(veth)
            # A fixed MAC lets the machine know every host's without ARP: a
            # cut host then times out like one behind a switch, and a restored
            # one answers at once instead of after a failed ARP round.
            mac = self._mac(spec.index)
            address = self._subnet(FIRST_HOST_OCTET + spec.index)
            lines += [
                f"netns add {ns}",
                f"link add {veth} type veth peer name eth0 address {mac} netns {ns}",
                f"link set {veth} master {self.bridge} up",
                f"neigh replace {address} lladdr {mac} dev {self.bridge} nud permanent",
            ]
        self._res.users += [self._netns_name(spec) for spec in specs]
        self._save()  # before making them, so a crash leaves a complete record
        _run([_tool("ip"), "-batch", "-"], input="\n".join(lines) + "\n")

    def _netns_name(self, spec: _HostSpec) -> str:
        # Also the user name: at most 3 + 3 + 1 + len(name) characters.
        return f"{NAME_PREFIX}{self.slot}-{spec.name}"

    def _make_netns_host(self, spec: _HostSpec) -> TestHost:
        ns = user = self._netns_name(spec)
        address = self._subnet(FIRST_HOST_OCTET + spec.index)
        home = self.dir / "home" / spec.name
        with _PASSWD_LOCK:
            # Password "*": none can match, yet unlike useradd's default "!"
            # sshd (without PAM) does not take the account for locked.
            _passwd_tool(["useradd", "--no-create-home", "--home-dir", str(home),
                          "--shell", HOST_SHELL, "--user-group", "--password", "*",
                          "--comment", "remoteenv testbed host", user])
        entry = pwd.getpwnam(user)
        host = self._new_host(spec, address=address, port=22, user=user, home=home, netns=ns)
        self._make_home(host, entry.pw_uid, entry.pw_gid, keyless=spec.options.keyless)
        if not spec.options.plain:
            self._apply_options(host, spec)
        _run([_tool("ip"), "-n", ns, "-batch", "-"], input=(
            "link set lo up\n"
            f"addr add {address}/24 dev eth0\n"
            "link set eth0 up\n"
            f"route add default via {self.gateway}\n"
        ))
        self._write_sshd_config(host)
        self._bring_up(host)
        return host

    def _make_local_host(self, spec: _HostSpec) -> TestHost:
        user = pwd.getpwuid(os.geteuid()).pw_name
        home = self.dir / "home" / spec.name
        host = self._new_host(spec, address="127.0.0.1", port=_free_port(), user=user, home=home, netns=None)
        self._make_home(host, None, None)
        self._write_sshd_config(host)
        for attempt in range(5):
            try:
                self._bring_up(host)
                break
            except RuntimeError:
                # Another program may have taken the port we picked.
                if attempt == 4 or host.down == "nosshd":
                    raise
                host.port = _free_port()
                host._set_host_key(host.host_key_line.split(" ", 1)[1])
                self._write_sshd_config(host)
        return host

    def _new_host(self, spec: _HostSpec, **where) -> TestHost:
        sshd_dir = self.dir / "sshd" / spec.name
        sshd_dir.mkdir(mode=0o700)
        env = {
            "HOME": str(where["home"]),
            "USER": where["user"],
            "LOGNAME": where["user"],
            "SHELL": HOST_SHELL,
            "PATH": f"{where['home']}/bin:/usr/local/bin:/usr/bin:/bin",
        }
        if where["netns"] is None:
            # Lets close() find processes started on local hosts.
            env[MARKER_VARIABLE] = str(self.dir)
        host = TestHost(name=spec.name, gpus=spec.gpus, down=spec.down, _gateway=self.gateway,
                        _sshd_dir=sshd_dir, _env=env, **where)
        host._set_host_key(_keygen(sshd_dir / "ssh_host_ed25519_key"))
        return host

    def _make_home(self, host: TestHost, uid: int | None, gid: int | None, keyless: bool = False) -> None:
        """Home with the client key authorized (unless keyless: no ~/.ssh), ~/bin, and the GPU stand-in if any."""
        home = host.home
        if keyless:
            home.mkdir(parents=True)
        else:
            (home / ".ssh").mkdir(parents=True, mode=0o700)
            _write(home / ".ssh" / "authorized_keys", self.client.public_key() + "\n", 0o600)
        (home / "bin").mkdir(mode=0o755)
        _write(home / ".profile", PROFILE, 0o644)
        if host.gpus > 0:
            shutil.copyfile(FAKE_NVIDIA_SMI, home / "bin" / "nvidia-smi")
            os.chmod(home / "bin" / "nvidia-smi", 0o755)
            _write(home / ".fake-gpus", f"{host.gpus}\n", 0o644)
        os.chmod(home, 0o755)
        if uid is not None:
            for path in [home, *home.rglob("*")]:
                os.chown(path, uid, gid)

    def _apply_options(self, host: TestHost, spec: _HostSpec) -> None:
        """Password, PAM service, sudoers drop-in and sshd drop-in folder of a host with options."""
        options = spec.options
        host.auth, host.sudo = options.auth, options.sudo
        host._sshd_options = options.sshd_options
        if options.auth in ("password", "kbdint"):
            import secrets

            host.password = secrets.token_urlsafe(12)
            # On stdin, never in argv.
            _run([_tool("chpasswd")], input=f"{host.user}:{host.password}\n")
        if options.auth in ("kbdint", "2fa"):
            import secrets

            service = self._pam_service(spec)
            host.prompt_log = host._sshd_dir / "prompts"
            check = host._sshd_dir / "pam-check"
            if options.auth == "2fa":
                host.code_file = host._sshd_dir / "code"
                host.set_code(f"{secrets.randbelow(10**6):06d}")
                # pam_permit: pam_exec takes no part in setcred, and a stack where none does fails it.
                stack = (f"auth required pam_exec.so expose_authtok quiet {check} code\n"
                         "auth optional pam_permit.so\n")
            else:
                stack = ("auth required pam_unix.so\n"
                         f"auth optional pam_exec.so expose_authtok quiet {check} count\n")
            _write(check, PAM_CHECK.format(log=host.prompt_log, code=host.code_file or "/dev/null"), 0o700)
            _write(PAM_DIR / service, f"# remoteenv testbed host {host.name} ({options.auth})\n{stack}{PAM_TAIL}",
                   0o644)
            # sshd's PAM service is its program's name (OpenSSH's SSHD_PAM_SERVICE is __progname).
            program = host._sshd_dir / service
            program.symlink_to(_tool("sshd"))
            host._sshd_program = str(program)
        if options.sudo:
            _write(SUDOERS_DIR / self._netns_name(spec), f"{host.user} ALL=(ALL:ALL) NOPASSWD: ALL\n", 0o440)
        if options.dropin:
            host.dropin_dir = host._sshd_dir / "sshd_config.d"
            host.dropin_dir.mkdir(mode=0o755)

    def _write_sshd_config(self, host: TestHost) -> None:
        if host.netns:
            specific = [
                f"ListenAddress {host.address}:22",
                "AuthorizedKeysFile .ssh/authorized_keys",
                "StrictModes yes",
                "PermitRootLogin no",
                # sshd sets HOME itself, from the passwd entry.
                f"SetEnv PATH={host._env['PATH']}",
            ]
        else:
            specific = [
                f"ListenAddress 127.0.0.1:{host.port}",
                # The key file sits outside the real home, under the
                # world-writable temp directory, which StrictModes rejects.
                f"AuthorizedKeysFile {host.home}/.ssh/authorized_keys",
                "StrictModes no",
                # This sshd cannot switch users; HOME is the host's own directory.
                "SetEnv " + " ".join(f"{k}={host._env[k]}" for k in ("HOME", "PATH", MARKER_VARIABLE)),
            ]
        config = host._sshd_dir / "sshd_config"
        pam = host.auth in ("kbdint", "2fa")
        _write(config, "\n".join([
            f"# sshd of testbed host {host.name}",
            # First, as Debian's: the first value sshd reads wins, so a drop-in beats what follows.
            *([f"Include {host.dropin_dir}/*.conf"] if host.dropin_dir else []),
            *specific,
            "AddressFamily inet",
            f"HostKey {host._sshd_dir}/ssh_host_ed25519_key",
            f"PidFile {host._sshd_dir}/sshd.pid",
            f"AllowUsers {host.user}",
            "PubkeyAuthentication yes",
            f"PasswordAuthentication {'yes' if host.auth == 'password' else 'no'}",
            f"KbdInteractiveAuthentication {'yes' if pam else 'no'}",
            f"UsePAM {'yes' if pam else 'no'}",
            *(["AuthenticationMethods publickey,keyboard-interactive"] if host.auth == "2fa" else []),
            "AllowTcpForwarding yes",
            "AllowStreamLocalForwarding yes",
            "X11Forwarding no",
            "PrintMotd no",
            "PrintLastLog no",
            "UseDNS no",
            "Subsystem sftp internal-sftp",
            *host._sshd_options,
        ]) + "\n", 0o600)
        host._sshd_config = str(config)

    def _bring_up(self, host: TestHost) -> None:
        if host.down == "nosshd":
            return
        host._start_sshd()
        if host.down == "cut":
            host.down = None
            host.cut_link()

    # -- use

    def host(self, name: str) -> TestHost:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(f"no host {name!r}; hosts are {[h.name for h in self.hosts]}")

    def ssh_argv(self, host: TestHost | str, command: str) -> list[str]:
        name = host.name if isinstance(host, TestHost) else self.host(host).name
        return ["ssh", "-F", str(self.client.ssh_config), name, command]

    def write_known_hosts(self, hosts: list[TestHost] | None = None) -> None:
        """Trust the current keys of hosts (all by default), e.g. after known=False."""
        self.client.write_known_hosts(self.hosts if hosts is None else hosts)

    # -- removal

    def close(self) -> None:
        """Remove every process, namespace, link, user and file of this testbed."""
        with self._close_lock:
            # A forked child inherits the atexit hook but owns nothing.
            if self._closed or os.getpid() != self._res.pid:
                return
            self._closed = True
        atexit.unregister(self.close)
        removed = False
        try:
            _teardown(self._res, [h._proc for h in self.hosts if h._proc])
            for host in self.hosts:
                host._proc = None
            removed = True
        finally:
            # On failure the state file stays, and the next testbed retries.
            self._slot.release(forget=removed)

    def __enter__(self) -> Testbed:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Testbed slot={self.slot} mode={self.mode} hosts={[h.name for h in self.hosts]}>"


def needs_netns(bed: Testbed) -> None:
    """Skip a test that needs hosts of their own (separate users, links to cut) in local mode."""
    if bed.mode != "netns":
        import pytest

        pytest.skip("needs namespace mode (root and iproute2)")


def make_testbed(n: int, *, gpus: int | list[int] = 0, down: dict[str, str] | None = None,
                 known: bool = True, prefix: str = "h", mode: str = "auto",
                 **host_options) -> Testbed:
    """Make a testbed with n hosts named <prefix>01, <prefix>02, ...

    gpus: one count for all hosts, or a list with one per host.
    down: {"h03": "nosshd"} starts no sshd there (connections are refused);
          "cut" starts it, then cuts the link (connections time out).
    known: put every host key into the client's known_hosts.
    mode: "auto", "netns" or "local" (see the module docstring).
    host_options: auth, sudo, keyless, dropin, sshd_options, as Testbed.add_hosts takes them
          (namespace mode only; see HostOptions).
    """
    bed = Testbed(mode=mode, known=known, prefix=prefix)
    try:
        bed.add_hosts(n, gpus=gpus, down=down, **host_options)
    except BaseException:
        bed.close()
        raise
    return bed
