"""paramiko, loaded without Invoke.

paramiko.config imports Invoke (and Invoke imports unittest.mock) at import time, only to run the
commands of `Match exec` lines in ssh config files. That import costs about as much as a whole
`remoteenv probe` round trip, and remoteenv reads ssh config files itself (inventory/ssh_*.py,
which run `Match exec` as ssh does), so paramiko is loaded with Invoke held back.
"""

from __future__ import annotations

import sys
from types import ModuleType


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
