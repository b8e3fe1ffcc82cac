"""paramiko loads without Invoke, and ssh configs with `Match exec` still resolve as OpenSSH would."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _python(code: str, home: Path) -> str:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env={"HOME": str(home), "PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, check=True)
    return proc.stdout.strip()


def test_transport_does_not_import_invoke(tmp_path):
    out = _python("""
        import sys
        import remoteenv.transport.connection, remoteenv.transport.hostkeys, remoteenv.api
        print("invoke" in sys.modules, sys.modules["paramiko.config"].invoke)
    """, tmp_path)
    assert out == "False None"


def test_the_library_front_door_loads_no_paramiko(tmp_path):
    """A command the keeper serves never pays for paramiko's import (about half a second)."""
    out = _python("""
        import sys
        import remoteenv.api, remoteenv.transport, remoteenv.fleet, remoteenv.runner, remoteenv.keeper.client
        print("paramiko" in sys.modules)
    """, tmp_path)
    assert out == "False"


def test_match_exec_lines_still_work(tmp_path):
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text(
        "Match host gpu-box exec \"test -d /\"\n    HostName 198.18.9.9\n    User viaexec\n"
        "Match host gpu-box exec \"false\"\n    Port 2222\n")
    out = _python("""
        import remoteenv.transport
        from remoteenv.inventory import Inventory, resolve
        host = resolve(Inventory(), "gpu-box")
        print(host.hostname, host.user, host.port)
    """, tmp_path)
    assert out == "198.18.9.9 viaexec 22"


def test_fabric_still_works_after_paramiko_loaded_without_invoke(tmp_path):
    out = _python("""
        import remoteenv.transport
        import fabric, invoke
        print(fabric.Connection("198.18.9.9").host, bool(invoke.Context))
    """, tmp_path)
    assert out == "198.18.9.9 True"
