"""OpenSSH's own answer for an ssh config: `ssh -G` (and `ssh -v` for the paths it expands only when
it connects), run under a home of the test's choosing.

OpenSSH finds `~` through the password database, not HOME. libnss_wrapper gives the ssh process a
passwd entry (this uid, this user name) whose home is the test's folder, so ssh and remoteenv read
the same ~/.ssh. A missing ssh or libnss_wrapper skips the test; with CI=true it fails it.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

# The options remoteenv reads, as `ssh -G` names them.
COMPARED = ("user", "hostname", "port", "identityfile", "identitiesonly", "certificatefile", "connecttimeout",
            "proxyjump", "proxycommand", "serveraliveinterval", "serveralivecountmax", "userknownhostsfile",
            "globalknownhostsfile", "hashknownhosts", "stricthostkeychecking", "controlpersist", "controlpath",
            "controlmaster", "canonicalizehostname", "canonicaldomains", "addkeystoagent", "identityagent")
REPEATED = ("identityfile", "certificatefile")


def _missing(what: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} is missing (the test command installs openssh-client and libnss-wrapper)")
    pytest.skip(f"{what} is not installed")


def nss_wrapper_library() -> str:
    for pattern in ("/usr/lib/*/libnss_wrapper.so", "/usr/lib64/libnss_wrapper.so", "/usr/lib/libnss_wrapper.so",
                    "/usr/local/lib/libnss_wrapper.so"):
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    _missing("libnss_wrapper")
    raise AssertionError  # not reached


def ssh_binary() -> str:
    found = shutil.which("ssh")
    if found is None:
        _missing("OpenSSH's ssh")
    return found  # type: ignore[return-value]


# A $SHELL for ssh: it records ssh's expanded ProxyCommand (`exec ...`) instead of running it, so
# no connection is ever opened, and runs anything else (`Match exec`) as /bin/sh would.
_RECORDER = """#!/bin/sh
case "$2" in
  "exec "*) exit 1;;
  *) exec /bin/sh -c "$2";;
esac
"""


@dataclass
class Verbose:
    """What `ssh -v` shows it expanded: identity and certificate files, the ProxyCommand."""

    identity_files: list[str]
    certificate_files: list[str]
    proxy_command: str | None
    stderr: str


class SshG:
    """`ssh -G` for one test home."""

    def __init__(self, home: Path, work: Path) -> None:
        self.ssh = ssh_binary()
        library = nss_wrapper_library()
        work.mkdir(parents=True, exist_ok=True)
        me = pwd.getpwuid(os.getuid())
        passwd, group = work / "passwd", work / "group"
        passwd.write_text(f"{me.pw_name}:x:{me.pw_uid}:{me.pw_gid}:{me.pw_gecos}:{home}:/bin/sh\n")
        group.write_text(f"{me.pw_name}:x:{me.pw_gid}:\n")
        shell = work / "shell"
        shell.write_text(_RECORDER)
        shell.chmod(0o755)
        self.home = home
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "SHELL": str(shell),
                    "LD_PRELOAD": library, "NSS_WRAPPER_PASSWD": str(passwd), "NSS_WRAPPER_GROUP": str(group)}

    def run(self, host: str, config: Path | None, extra_env: dict[str, str] | None = None,
            ) -> tuple[dict[str, str | list[str]] | None, str]:
        """ssh -G's view of `host` (keys in COMPARED), or None with its stderr when ssh refuses."""
        argv = [self.ssh, "-G", *(["-F", str(config)] if config else []), "--", host]
        done = subprocess.run(argv, env={**self.env, **(extra_env or {})}, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=30)
        if done.returncode != 0:
            return None, done.stderr
        seen: dict[str, str | list[str]] = {}
        for line in done.stdout.splitlines():
            key, _, value = line.partition(" ")
            key = key.lower()
            if key in REPEATED:
                seen.setdefault(key, [])
                seen[key].append(value)  # type: ignore[union-attr]
            elif key in COMPARED:
                seen[key] = value
        for key in REPEATED:
            seen.setdefault(key, [])
        return seen, done.stderr

    def verbose(self, host: str, config: Path | None, extra_env: dict[str, str] | None = None,
                stand_in_proxy: bool = False) -> Verbose:
        """Run `ssh -v host true` far enough to see its expanded paths; it never connects (the
        ProxyCommand goes to the recording shell, a host without one gets a stand-in)."""
        argv = [self.ssh, "-v", "-o", "BatchMode=yes", "-o", "ControlMaster=no", "-o", "ControlPath=none",
                *(["-F", str(config)] if config else [])]
        if stand_in_proxy:
            argv += ["-o", "ProxyCommand=remoteenv-test-stand-in"]
        done = subprocess.run([*argv, "--", host, "true"], env={**self.env, **(extra_env or {})},
                              capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30)
        shown = re.findall(r"^debug1: identity file (.*) type -?\d+$", done.stderr, re.M)
        # With no CertificateFile, ssh also tries (and shows) each key's `-cert` companion.
        identities = [f for i, f in enumerate(shown) if not (i and f == shown[i - 1] + "-cert")]
        certificates = re.findall(r"^debug1: certificate file (.*) type -?\d+$", done.stderr, re.M)
        proxy = re.findall(r"^debug1: Executing proxy command: exec (.*)$", done.stderr, re.M)
        return Verbose(identities, certificates, proxy[0] if proxy and not stand_in_proxy else None, done.stderr)


def ssh_g_options(argv: list[str], cwd: Path, ssh: str = "ssh") -> dict[str, list[str]]:
    """Every option `ssh -F /dev/null -G ARGV` prints, each with all its values (no connection)."""
    out = subprocess.run([ssh, "-G", "-F", "/dev/null", *argv], capture_output=True, text=True, cwd=cwd,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    seen: dict[str, list[str]] = {}
    for line in out.stdout.splitlines():
        key, _, value = line.partition(" ")
        seen.setdefault(key, []).append(value)
    return seen
