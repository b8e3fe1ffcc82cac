"""ProxyJump hops as OpenSSH writes them: `[user@]host[:port]`, `[user@][v6addr]:port`. No paramiko."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hop:
    name: str
    user: str | None = None
    port: int | None = None


def parse_hop(text: str) -> Hop:
    user = None
    if "@" in text:
        user, text = text.rsplit("@", 1)
    port = None
    if text.startswith("["):
        name, _, rest = text[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else None
    elif text.count(":") == 1:
        name, port_text = text.split(":")
        port = int(port_text)
    else:
        name = text
    return Hop(name, user or None, port)


def hops_of(proxy_jump: str | None) -> list[Hop]:
    return [parse_hop(h.strip()) for h in (proxy_jump or "").split(",") if h.strip()]
