"""Run the real `remoteenv` command as a person would: a subprocess with the test's HOME."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def remoteenv(*args: str, env: dict[str, str] | None = None, cwd: str | os.PathLike | None = None,
              timeout: float = 300, input: str | None = None) -> CliResult:
    full_env = dict(env or os.environ)
    full_env.setdefault("COLUMNS", "200")
    # The package under test, whether or not it is installed in this interpreter.
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-m", "remoteenv", *args], env=full_env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, input=input)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)
