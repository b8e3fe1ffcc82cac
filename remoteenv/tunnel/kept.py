"""The `kept` tunnel backend: forwards ride the keeper's signed-in connection (remoteenv.keeper).

For hosts that ask for a one-time code at every login: ssh -L would ask again, this asks nobody.
It listens on the local ports itself; each connection made to them becomes a socket to the keeper
that carries raw bytes to the host's port. Unix-socket services are not offered (paramiko opens no
direct-streamlocal channel): those use the openssh backend.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from remoteenv.errors import RemoteenvError
from remoteenv.tunnel import LOCAL_HOST, TunnelError
from remoteenv.tunnel.base import Backend

if TYPE_CHECKING:
    from remoteenv.inventory import Host
    from remoteenv.transport import ConnectOptions
    from remoteenv.tunnel import Forward


def _no_prompt(host: str, title: str, instructions: str, prompts: list[tuple[str, bool]]) -> list[str]:
    from remoteenv.errors import AuthFailed

    raise AuthFailed(host, "the keeper holds no signed-in connection and a tunnel cannot ask for the code",
                     "run `remoteenv probe HOST` in a terminal first")


class KeptBackend(Backend):
    name = "kept"

    def __init__(self, host: Host, forwards: Sequence[Forward], options: ConnectOptions | None) -> None:
        super().__init__(host, forwards, options)
        for forward in self.forwards:
            if forward.remote_is_socket:
                raise TunnelError(f"{host.name}: the kept backend forwards TCP ports only, not {forward.remote}",
                                  "use --backend openssh for a Unix-socket Jupyter")
        self._control = None  # the KeptConnection whose session the forwards use
        self._listeners: list[socket.socket] = []
        self._ended = threading.Event()
        self._error = ""

    def _connect(self):  # -> KeptConnection
        from remoteenv.keeper import client
        from remoteenv.transport import ConnectOptions

        options = self.options or ConnectOptions()
        options = ConnectOptions(**{**vars(options), "prompt": options.prompt or _no_prompt, "reuse": True})
        conn = client.connect(self.host, options)
        if conn is None:
            raise TunnelError(f"{self.host.name}: no connection keeper could be started",
                              "use --backend openssh")
        return conn

    def open(self, timeout: float) -> None:
        self._ended.clear()
        self._error = ""
        self._control = self._connect()
        try:
            for forward in self.forwards:
                listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    listener.bind((LOCAL_HOST, forward.local_port))
                except OSError as exc:
                    listener.close()
                    raise TunnelError(f"{self.host.name}: cannot listen on {LOCAL_HOST}:{forward.local_port}: "
                                      f"{exc.strerror}", "the local port is busy: give another with --local-port"
                                      ) from None
                listener.listen(64)
                self._listeners.append(listener)
                threading.Thread(target=self._accept, args=(listener, forward), daemon=True,
                                 name=f"kept-{forward.local_port}").start()
        except BaseException:
            self.close()
            raise

    def _accept(self, listener: socket.socket, forward: Forward) -> None:
        while not self._ended.is_set():
            try:
                local, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._carry, args=(local, forward), daemon=True).start()

    def _carry(self, local: socket.socket, forward: Forward) -> None:
        from remoteenv.keeper import client, wire

        host, _, port = forward.remote.rpartition(":")
        try:
            conn = self._connect()
        except RemoteenvError as exc:
            self._error = exc.one_line()
            local.close()
            return
        try:
            pipe = conn.forward(host or "127.0.0.1", int(port))
        except (RemoteenvError, client.KeeperGone) as exc:
            self._error = str(exc)
            conn.close()
            local.close()
            return
        try:
            wire.splice(local, pipe)
        finally:
            local.close()
            pipe.close()

    def wait(self, timeout: float | None = None) -> bool:
        """True once the kept connection is gone (the keeper ended it, or the host dropped)."""
        if self._ended.wait(timeout if timeout is not None else 3600):
            return True
        control = self._control
        try:
            if control is None or not control.still_alive():
                self._error = self._error or "the kept connection ended"
                return True
        except Exception as exc:  # the keeper itself ended
            self._error = str(exc) or "the keeper ended"
            return True
        return False

    def close(self) -> None:
        self._ended.set()
        from remoteenv.keeper import wire

        for listener in self._listeners:
            wire.stop_listening(listener)
        self._listeners = []
        control, self._control = self._control, None
        if control is not None:
            control.close()

    @property
    def last_error(self) -> str:
        return self._error
