"""A small HTTP server for tests: serves a folder (installers, fake channels) to the test hosts.

    from fakes.conda.serve import serve
    with serve(folder, host=bed.gateway) as server:        # the machine's side of the test bridge
        host.run(f"curl -fsSO {server.url}/Miniconda3-py311_25.5.1-1-Linux-x86_64.sh")
        assert "/Miniconda3-py311_25.5.1-1-Linux-x86_64.sh" in server.paths

It binds only to 127.0.0.0/8 or the test range 198.18.0.0/15 (never 0.0.0.0), answers at most
``max_requests`` requests and stops by itself after ``lifetime`` seconds, or when the ``with`` block ends.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

ALLOWED = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("198.18.0.0/15"))


class _Handler(SimpleHTTPRequestHandler):
    server_version = "remoteenv-test-server"

    def __init__(self, *args, owner: Server, **kwargs):
        self.owner = owner
        super().__init__(*args, **kwargs)

    def do_GET(self):
        if not self.owner._count(self.path):
            self.send_error(503, "request limit reached")
            return
        super().do_GET()

    def do_HEAD(self):
        if not self.owner._count(self.path):
            self.send_error(503, "request limit reached")
            return
        super().do_HEAD()

    def log_message(self, format, *args):  # quiet: the paths are kept in Server.paths
        pass


class Server:
    def __init__(self, directory: str | os.PathLike, host: str = "127.0.0.1", port: int = 0, *,
                 lifetime: float = 600.0, max_requests: int = 5000):
        address = ipaddress.ip_address(host)
        if not any(address in net for net in ALLOWED):
            raise ValueError(f"serve only on loopback or the test range, not {host}")
        self.directory = os.fspath(directory)
        self.host = host
        self.max_requests = max_requests
        self.paths: list[str] = []
        self._lock = threading.Lock()
        handler = functools.partial(_Handler, owner=self, directory=self.directory)
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"test-http-{self.port}", daemon=True)
        self._timer = threading.Timer(lifetime, self.stop)
        self._timer.daemon = True
        self._stopped = False

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _count(self, path: str) -> bool:
        with self._lock:
            self.paths.append(path)
            return len(self.paths) <= self.max_requests

    def start(self) -> Server:
        self._thread.start()
        self._timer.start()
        return self

    def stop(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._timer.cancel()
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def serve(directory: str | os.PathLike, host: str = "127.0.0.1", port: int = 0, **options) -> Server:
    """Start serving directory on host:port (0: any free port); use as a context manager or call stop()."""
    return Server(directory, host, port, **options).start()
