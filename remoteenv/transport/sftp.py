"""SFTP calls paramiko does not offer."""

from __future__ import annotations

from remoteenv.sshlib import load_paramiko

# Held-back Invoke: see remoteenv.sshlib. Not at the package's import: a kept connection needs no paramiko.
paramiko = load_paramiko()
CMD_HANDLE, CMD_OPEN = paramiko.sftp.CMD_HANDLE, paramiko.sftp.CMD_OPEN
SFTP_FLAG_CREATE, SFTP_FLAG_EXCL, SFTP_FLAG_WRITE = (paramiko.sftp.SFTP_FLAG_CREATE, paramiko.sftp.SFTP_FLAG_EXCL,
                                                     paramiko.sftp.SFTP_FLAG_WRITE)


def open_private(sftp: paramiko.SFTPClient, path: str, mode: int = 0o600) -> paramiko.SFTPFile:
    """Create `path` for writing with `mode` from its first byte; fail if it exists.

    paramiko's `open` sends no permissions, so the server creates the file 0666 less its umask
    (0644 as a rule) and a chmod can only follow once bytes are already there. Exclusive creation
    also means a name planted in advance (a symlink) is never written through.
    """
    attrs = paramiko.SFTPAttributes()
    attrs.st_mode = mode
    kind, msg = sftp._request(CMD_OPEN, sftp._adjust_cwd(path),
                              SFTP_FLAG_WRITE | SFTP_FLAG_CREATE | SFTP_FLAG_EXCL, attrs)
    if kind != CMD_HANDLE:
        raise paramiko.SFTPError("Expected handle")
    return paramiko.SFTPFile(sftp, msg.get_binary(), "wb")
