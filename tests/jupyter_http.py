"""What Jupyter answers through a tunnel's local port, as a test sees it."""

from __future__ import annotations

import urllib.error
import urllib.request


def status_code(port: int, token: str | None, path: str = "/api/status") -> int:
    """The HTTP status of GET 127.0.0.1:port/path with this token (none: no header); 0 when nothing listens."""
    headers = {"Authorization": f"token {token}"} if token else {}
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy
    try:
        with opener.open(urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers),
                         timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0
