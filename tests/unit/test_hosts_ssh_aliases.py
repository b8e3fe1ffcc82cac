"""`remoteenv hosts` with no inventory lists the ssh config's aliases, resolved as ssh resolves them."""

from __future__ import annotations

import os
import pwd
import shutil
from pathlib import Path

from cli_runner import remoteenv

CONFIG = """\
Host login perlmutter
  HostName perlmutter.hpc.example.gov   # the login node
  User jdoe
  IdentityFile ~/.ssh/nersc
Host compute*
  ProxyJump login
Host web[12]
  Port 2202
Host *.example.org !skip.example.org
  User org
Host *
  ServerAliveInterval 60
"""


def _env(home: Path) -> dict[str, str]:
    return {"HOME": str(home), "PATH": "/usr/bin:/bin", "REMOTEENV_CONFIG_DIR": str(home / "config")}


def test_hosts_lists_the_ssh_config_aliases(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    config = home / ".ssh" / "config"
    config.write_text(CONFIG)
    result = remoteenv("hosts", "--json", env=_env(home), cwd=tmp_path)
    assert result.code == 0, result.err
    data = result.json()
    assert data["inventory"] is None and data["ssh_config"] == str(config)
    hosts = {h["name"]: h for h in data["hosts"]}
    assert sorted(hosts) == ["login", "perlmutter", "web[12]"]  # `web[12]` is one literal name to ssh
    login = hosts["login"]
    assert (login["hostname"], login["user"], login["server_alive_interval"]) == \
        ("perlmutter.hpc.example.gov", "jdoe", 60.0)
    assert login["sources"]["hostname"] == f"{config}:2" and login["sources"]["user"] == f"{config}:3"
    assert login["sources"]["server_alive_interval"] == f"{config}:12"
    assert hosts["web[12]"]["port"] == 2202 and hosts["web[12]"]["sources"]["port"] == f"{config}:8"
    if shutil.which("ssh"):
        from ssh_g import SshG

        ssh = SshG(home, tmp_path / "ssh-g")
        for name, host in hosts.items():
            theirs, err = ssh.run(name, None)
            assert theirs is not None, err
            local = pwd.getpwuid(os.getuid()).pw_name  # no User: ssh uses the local account's name
            assert (theirs["hostname"], theirs["user"], int(theirs["port"])) == \
                (host["hostname"], host["user"] or local, host["port"]), name

    table = remoteenv("hosts", env={**_env(home), "COLUMNS": "100"}, cwd=tmp_path)
    assert table.code == 0, table.err
    assert "aliases of your ssh config" in table.out and "jdoe@perlmutter.hpc.example.gov" in table.out
    assert "config:2-4,12" in table.out


def test_hosts_with_no_inventory_and_no_aliases_shows_how_to_start(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text("Host *\n  User everyone\n")
    result = remoteenv("hosts", env=_env(home), cwd=tmp_path)
    assert result.code == 0, result.err
    assert "No hosts" in result.out and "gpu-box: {hostname: 10.1.2.3, user: alice}" in result.out
