"""The sandbox as a throwaway OpenSSH sshd: 127.0.0.1 only, one user, one key, no root needed.

A non-root sshd can only log in as the user running it, which is all the sandbox wants. As root
it works too (`PermitRootLogin prohibit-password` is sshd's default; root's sshd needs /run/sshd).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from remoteenv.paths import write_private
from remoteenv.sandbox.errors import SandboxUsageError
from remoteenv.sandbox.state import SandboxPaths

CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd", "/usr/bin/sshd")
PRIVSEP_DIR = "/run/sshd"


def find_sshd() -> str | None:
    """The sshd binary: REMOTEENV_SSHD, the usual places, then PATH (sshd needs an absolute path)."""
    given = os.environ.get("REMOTEENV_SSHD")
    if given:
        if not (os.path.isfile(given) and os.access(given, os.X_OK)):
            raise SandboxUsageError(f"REMOTEENV_SSHD={given} is not an executable file",
                                    "point it at sshd, or unset it to search the usual places")
        return os.path.abspath(given)
    for candidate in CANDIDATES:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("sshd")
    return os.path.abspath(found) if found else None


def _quoted(value: Path | str, tokens: bool = False) -> str:
    """A value for sshd_config; state dirs may hold spaces (macOS: "Application Support")."""
    text = str(value)
    if '"' in text or "\n" in text:
        raise SandboxUsageError(f"the sandbox cannot live in {text!r} (sshd_config cannot quote it)",
                                "set REMOTEENV_STATE_DIR to a plainer path")
    if tokens:  # options that expand %-tokens
        text = text.replace("%", "%%")
    return f'"{text}"'


def write_config(p: SandboxPaths, port: int, user: str) -> None:
    lines = [
        "# The remoteenv sandbox's sshd. Made by `remoteenv sandbox up`; rewritten on each start.",
        f"ListenAddress 127.0.0.1:{port}",
        "AddressFamily inet",
        f"HostKey {_quoted(p.host_key)}",
        f"PidFile {_quoted(p.pid_file)}",
        f"AllowUsers {user}",
        f"AuthorizedKeysFile {_quoted(p.authorized_keys, tokens=True)}",
        # The key file may sit under a world-writable temp dir, which StrictModes would refuse.
        "StrictModes no",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "AllowTcpForwarding yes",
        "AllowStreamLocalForwarding yes",
        "X11Forwarding no",
        "PermitUserRC no",
        "PrintMotd no",
        "PrintLastLog no",
        "UseDNS no",
        "MaxSessions 64",
        "MaxStartups 64:30:128",
        "LogLevel INFO",
        # Sessions get the sandbox's own home; sftp starts there too, so `~` means the same to both.
        f"SetEnv {_quoted(f'HOME={p.home}')}",
        f"Subsystem sftp internal-sftp -d {_quoted(p.home, tokens=True)}",
    ]
    write_private(p.sshd_config, "\n".join(lines) + "\n")


def prepare_runtime() -> None:
    """Root's sshd refuses to start without its privilege-separation directory."""
    if hasattr(os, "geteuid") and os.geteuid() == 0 and not os.path.isdir(PRIVSEP_DIR):
        os.makedirs(PRIVSEP_DIR, mode=0o755, exist_ok=True)


def command(sshd: str, p: SandboxPaths) -> list[str]:
    # No -D: sshd forks into the background itself; -E keeps its log in the sandbox dir.
    return [sshd, "-f", str(p.sshd_config), "-E", str(p.log)]
