"""A run's facts for every host whose connection the keeper holds, asked in one request.

A run learns each host (the probe and the steps' questions) before it decides anything. Through the
keeper, each host would otherwise cost its own socket, session, request and close; here all the
probes go in one request, the keeper runs them side by side (each in its connection's kept shell),
and each host's answer arrives as it ends. A host whose answer is anything but a whole probe (no
connection held, a dropped link, a failed or timed-out probe, no keeper at all) takes the ordinary
path: connect, then probe, which signs in again where needed and says what went wrong in its own
words. Nothing here starts a keeper or signs in.
"""

from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING, Any

from remoteenv import facts as facts_mod

if TYPE_CHECKING:
    from remoteenv.facts import HostFacts, Query
    from remoteenv.inventory import Host
    from remoteenv.keeper.client import ScriptBatch
    from remoteenv.transport import ConnectOptions


class Prefetch:
    def __init__(self, names: list[str]) -> None:
        self._ids = {name: uuid.uuid4().hex[:12] for name in names}
        self._names = {i: name for name, i in self._ids.items()}
        self._found: dict[str, HostFacts | None] = {}
        self._events = {name: threading.Event() for name in names}
        self._batch: ScriptBatch | None = None

    @classmethod
    def start(cls, work: list[tuple[Host, list[Query]]], options: ConnectOptions,
              timeout: float) -> Prefetch | None:
        """Ask the keeper for the facts of every host in `work` it may serve; None: it serves none."""
        from remoteenv.keeper import client as kept

        wanted = [(host, queries) for host, queries in work if kept.wanted(host, options)]
        if not wanted:
            return None
        try:
            keys = {host.name: kept.open_request(host, options)["key"] for host, _ in wanted}
        except Exception:  # a jump host that does not resolve, say: the ordinary path will say so
            return None
        prefetch = cls([host.name for host, _ in wanted])
        scripts: dict[str, str] = {}  # a fleet's hosts mostly ask the same questions: each text once
        by_questions: dict[tuple[str, ...], str] = {}
        items = []
        for host, queries in wanted:
            asked = tuple(q.shell() for q in dict.fromkeys(queries))
            if asked not in by_questions:
                by_questions[asked] = str(len(scripts))
                scripts[by_questions[asked]] = facts_mod.probe_script(queries, brief=True)
            items.append({"id": prefetch._ids[host.name], "key": keys[host.name], "timeout": timeout,
                          "script": by_questions[asked]})
        prefetch._batch = kept.ScriptBatch.start(items, scripts, prefetch._answer, prefetch._end)
        return prefetch if prefetch._batch is not None else None

    def take(self, name: str, cancel: threading.Event) -> HostFacts | None:
        """`name`'s facts once its answer came; None: take the ordinary path."""
        event = self._events.get(name)
        if event is None:
            return None
        while not event.wait(0.1):
            if cancel.is_set():
                return None
        return self._found.get(name)

    def close(self) -> None:
        if self._batch is not None:
            self._batch.close()

    def _answer(self, reply: dict[str, Any]) -> None:
        name = self._names.get(str(reply.get("item")))
        if name is None:
            return
        result = reply.get("result")
        if isinstance(result, dict) and result.get("exited") == 0 and "end\t1" in str(result.get("stdout")):
            self._found[name] = facts_mod.parse(str(result["stdout"]))
        self._events[name].set()

    def _end(self) -> None:
        for event in self._events.values():  # unanswered: the ordinary path
            event.set()
