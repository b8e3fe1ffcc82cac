"""Is remoteenv's Jupyter server NAME on this host alive, the one wanted, and answering?

Kept by remote/jupyter.sh as ~/.remoteenv/jupyter/ready.py and run with the env's own python:
    ready.py key   NAME ENV APP SOCKET DIR GPUS   print the settings key a server so started has
    ready.py check NAME ENV APP SOCKET DIR GPUS   exit 0: alive, started with these settings, answers
    ready.py ping  NAME [WHERE]                   exit 0: alive and answers /api/status with its token
    ready.py wait  NAME INFO SECONDS              a server just started: wait until its runtime file INFO
                                                  names where it listens and it answers there; print that
Other exits: 2 no such server (or unreadable state), 3 its process is gone, 4 other settings,
5 it does not answer. The probe asks `check` (one question in its round trip), so an unchanged
host needs no further trip. Standard library only: it runs in any env, with no remoteenv there.
"""

import http.client
import json
import os
import socket
import sys

FOLDER = os.path.join(os.environ["HOME"], ".remoteenv", "jupyter")


def home_path(path):
    """remoteenv's one `~` rule (remotepath.py): a leading `~` or `~/` is the home folder."""
    if path == "~":
        return os.environ["HOME"]
    if path.startswith("~/"):
        return os.path.join(os.environ["HOME"], path[2:])
    return path


def key(env, app, sock, folder, gpus):
    # The env's real path: a rebuilt env is a new build, and its server must start again.
    return "|".join([os.path.realpath(home_path(env)), app, sock, home_path(folder), gpus])


def alive(name):
    with open(os.path.join(FOLDER, f"jupyter-{name}.pid")) as fh:
        pid, start = fh.read().split()
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmdline = fh.read()
    except OSError:
        return False
    # Fields after the command name (which may hold spaces): state first, start time 19 later.
    fields = stat[stat.rindex(")") + 2:].split()
    return fields[0] != "Z" and fields[19] == start and b"jupyter" in cmdline


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=5)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(5)
        self.sock.connect(self.unix_path)


def answers(name, where=None):
    if where is None:
        with open(os.path.join(FOLDER, f"{name}.json")) as fh:
            state = json.load(fh)
        where = state.get("sock") or str(state.get("port") or "")
    with open(os.path.join(FOLDER, f"{name}.token")) as fh:
        token = fh.read()
    if where.startswith("/"):
        conn = UnixConnection(where)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", int(where), timeout=5)
    try:
        conn.request("GET", "/api/status", headers={"Authorization": "token " + token})
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def wait(name, info, seconds):
    import time

    deadline = time.monotonic() + float(seconds)
    where = None
    while time.monotonic() < deadline:
        if not alive(name):
            return 3
        if where is None and os.path.exists(info):
            try:
                with open(info) as fh:
                    state = json.load(fh)
                where = state.get("sock") or str(state.get("port") or "") or None
            except ValueError:
                pass  # being written
        if where is not None and answers(name, where):
            print(where)
            return 0
        time.sleep(0.05)
    return 5


def main(argv):
    action, name = argv[1], argv[2]
    if action == "key":
        print(key(*argv[3:8]))
        return 0
    if action == "wait":
        try:
            return wait(name, argv[3], argv[4])
        except (OSError, IndexError):
            return 2
    try:
        if not alive(name):
            return 3
        if action == "check":
            with open(os.path.join(FOLDER, f"{name}.key")) as fh:
                if fh.read().strip() != key(*argv[3:8]):
                    return 4
        return 0 if answers(name, argv[3] if action == "ping" and len(argv) > 3 else None) else 5
    except (OSError, ValueError, IndexError, http.client.HTTPException):
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
