"""The `openssh` backend: the system `ssh -N -L`, with the connection remoteenv resolved for the host.

Everything remoteenv decided (HostName, User, Port, keys, ProxyJump or ProxyCommand, keepalives) is
passed with -o, and the ssh config and known_hosts files are named explicitly (-F, UserKnownHostsFile,
GlobalKnownHostsFile): `ssh` finds `~` through the passwd entry, not HOME, so it could otherwise read
other files than remoteenv did. Host keys are checked strictly against the same files remoteenv
uses; only keys and agents log in (no password or keyboard-interactive prompt).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from remoteenv.tunnel import TunnelError, listening
from remoteenv.tunnel.base import Backend

LOCAL_USER_DEFAULT = "user"


def ssh_binary() -> str | None:
    return shutil.which("ssh")


def _quote_files(paths: list[str]) -> str:
    # ssh splits these lists like a shell word list: quote paths with spaces.
    return " ".join(f'"{p}"' if any(c.isspace() for c in p) else p for p in paths)


class OpenSSHBackend(Backend):
    name = "openssh"

    def __init__(self, *args, argv: list[str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._proc: subprocess.Popen[bytes] | None = None
        self._error = ""
        self._argv = argv  # a detached keeper gets the command its parent built (no inventory to load)

    def argv(self) -> list[str]:
        if self._argv is not None:
            return list(self._argv)
        # Here, not at the top: a detached keeper that is given its command starts without paramiko.
        from remoteenv.inventory.sshconfig import config_path
        from remoteenv.transport import hostkeys, keepalive

        host, options = self.host, self.options
        binary = ssh_binary()
        if binary is None:
            raise TunnelError("no ssh client on this machine", "install OpenSSH's client, or use --backend asyncssh")
        config = config_path()
        interval, count = keepalive.settings(host, options)
        tokens = hostkeys.ssh_tokens(host.name, host.hostname, host.port, host.user or _local_user(),
                                     host.proxy_jump)
        user_files = [str(p) for p in hostkeys.user_files(hostkeys.option_files(host.user_known_hosts_file,
                                                                                  tokens=tokens))]
        global_files = [str(p) for p in hostkeys.global_files(hostkeys.option_files(host.global_known_hosts_file))]
        global_files.append(str(hostkeys.own_known_hosts()))
        argv = [binary, "-N", "-F", str(config) if Path(config).is_file() else os.devnull,
                "-o", "ExitOnForwardFailure=yes",
                "-o", "BatchMode=yes",  # never a prompt from a background process: keys and agents only
                "-o", "PasswordAuthentication=no", "-o", "KbdInteractiveAuthentication=no",
                "-o", "StrictHostKeyChecking=yes",
                "-o", f"UserKnownHostsFile={_quote_files(user_files) or 'none'}",
                "-o", f"GlobalKnownHostsFile={_quote_files(global_files)}",
                "-o", f"ServerAliveInterval={int(interval)}", "-o", f"ServerAliveCountMax={count}",
                "-o", f"HostName={host.hostname}", "-o", f"Port={host.port}"]
        if host.user:
            argv += ["-o", f"User={host.user}"]
        for key in host.identity_files:
            argv += ["-o", f"IdentityFile={os.path.expanduser(key)}"]
        if host.identities_only:
            argv += ["-o", "IdentitiesOnly=yes"]
        if host.connect_timeout or options.connect_timeout:
            argv += ["-o", f"ConnectTimeout={int(options.connect_timeout or host.connect_timeout or 0) or 1}"]
        if host.proxy_command:
            argv += ["-o", f"ProxyCommand={host.proxy_command}"]
        elif host.proxy_jump:
            argv += ["-o", f"ProxyJump={self._jump(host.proxy_jump)}"]
        for forward in self.forwards:
            argv += ["-L", forward.spec()]
        return [*argv, "--", host.name]

    def _jump(self, value: str) -> str:
        """ProxyJump hops as ssh can reach them: a hop only the inventory knows becomes user@host:port."""
        if value.lower() == "none" or self.options.resolve_jump is None:
            return value
        hops = []
        for hop in value.split(","):
            try:
                jump = self.options.resolve_jump(hop.strip())
            except Exception:
                hops.append(hop.strip())
                continue
            user = f"{jump.user}@" if jump.user else ""
            hops.append(f"{user}{jump.hostname}:{jump.port}")
        return ",".join(hops)

    def open(self, timeout: float) -> None:
        self._error = ""
        proc = self._proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                             stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self._proc is not proc:  # close() while it opened (a detached tunnel's stop signal)
                raise TunnelError(f"{self.host.name}: the tunnel was closed while it opened")
            if proc.poll() is not None:
                self._error = self._stderr() or f"ssh exited {proc.returncode}"
                raise TunnelError(f"{self.host.name}: ssh -L failed: {self._error}", _hint(self._error))
            if all(listening(f.local_port) for f in self.forwards):
                return
            if time.monotonic() > deadline:
                self.close()
                raise TunnelError(f"{self.host.name}: the tunnel did not open within {timeout:g}s",
                                  "check that `remoteenv probe HOST` connects")
            time.sleep(0.05)

    def _stderr(self) -> str:
        if self._proc is None or self._proc.stderr is None:
            return ""
        try:
            text = self._proc.stderr.read().decode(errors="replace")
        except (OSError, ValueError):
            return ""
        lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("Warning: Permanently")]
        return lines[-1] if lines else ""

    def wait(self, timeout: float | None = None) -> bool:
        if self._proc is None:
            return True
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        if not self._error:
            self._error = self._stderr() or f"ssh exited {self._proc.returncode}"
        return True

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def last_error(self) -> str:
        return self._error


def _hint(error: str) -> str:
    lowered = error.lower()
    if "host key verification failed" in lowered:
        return "the host's key is not in known_hosts: run `remoteenv probe HOST --accept-new-host-key` once"
    if "permission denied" in lowered:
        return "key login failed: check IdentityFile with `remoteenv hosts HOST`"
    if "address already in use" in lowered or "cannot listen" in lowered:
        return "the local port is busy: give another with --local-port"
    return "check that `remoteenv probe HOST` connects"


def _local_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:
        return LOCAL_USER_DEFAULT
