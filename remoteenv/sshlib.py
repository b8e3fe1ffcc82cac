"""paramiko, loaded without Invoke.

paramiko.config imports Invoke (and Invoke imports unittest.mock) at import time, only to run the
commands of `Match exec` lines in ssh config files. That import costs about as much as a whole
`remoteenv probe` round trip, so paramiko is loaded with Invoke held back, and Invoke is handed to
paramiko.config only when a config file really has a `Match exec` line.
"""

from __future__ import annotations

import re
import sys
from types import ModuleType

_MATCH_EXEC = re.compile(r"(?im)^\s*match\s.*\bexec\b")


def load_paramiko() -> ModuleType:
    if "paramiko" in sys.modules:
        return sys.modules["paramiko"]
    held_back = "invoke" not in sys.modules
    if held_back:
        sys.modules["invoke"] = None  # type: ignore[assignment]  # makes `import invoke` fail fast
    import logging

    # paramiko logs a failed handshake (with a traceback) from its own thread; without a handler
    # Python would print that on stderr. remoteenv reports it as one typed line instead (-vv shows it).
    logging.getLogger("paramiko").addHandler(logging.NullHandler())
    try:
        import paramiko
    finally:
        if held_back and sys.modules.get("invoke", 0) is None:
            del sys.modules["invoke"]
    return paramiko


def enable_match_exec(config_text: str) -> None:
    """Give paramiko.config its Invoke back when `config_text` has a `Match exec` line."""
    if not _MATCH_EXEC.search(config_text):
        return
    import paramiko.config

    if paramiko.config.invoke is None:
        import invoke

        paramiko.config.invoke = invoke
        paramiko.config.invoke_import_error = None


def fast_ssh_config(text: str):  # -> paramiko.SSHConfig
    """paramiko's SSHConfig for `text`, minus a cost that grows with hosts x Host blocks.

    paramiko asks the OS for the local user name once per block per lookup, even for blocks with
    no `Match` line; with an ssh config of 50 hosts that is most of a fleet run's start-up.
    """
    paramiko = load_paramiko()

    class _SSHConfig(paramiko.SSHConfig):
        def _does_match(self, match_list, *args, **kwargs):  # type: ignore[override]
            if not match_list:
                return []
            return super()._does_match(match_list, *args, **kwargs)

    return _SSHConfig.from_text(text)
