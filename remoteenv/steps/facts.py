"""The `facts` step: learn the host again mid-playbook, so later steps check against fresh facts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from remoteenv import facts as facts_mod
from remoteenv.steps.base import OK, Param, Result, Step, register

if TYPE_CHECKING:
    from remoteenv.facts import HostFacts, Query
    from remoteenv.steps.io import StepIO
    from remoteenv.transport import Connection


@register("facts")
class Facts(Step):
    """Gather the host's facts again (one round trip), answering the later steps' questions too.

    Changes nothing on the host, so a plan never lists it. On apply it runs only when an earlier
    step changed the host since facts were last gathered; otherwise the facts are still fresh.

    Parameters:
      timeout   seconds before the probe is given up (default 60)

    Example:

        steps:
          - shell:
              command: sh ./install-tools.sh
              creates: ~/.local/bin/tool
          - facts: {}
          - shell:
              command: tool setup
              unless: tool status
    """

    PARAMS = (Param("timeout", kind=float, doc="seconds before the probe is given up"),)
    rechecks_after_change = True

    def __init__(self, params: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        if self.params["timeout"] is not None:
            self.timeout = float(self.params["timeout"])
        # The questions of the steps after this one (see_later_steps).
        self.later_queries: list[Query] = []

    def see_later_steps(self, later: list[Step]) -> None:
        self.later_queries = [q for step in later for q in step.queries()]

    def check(self, facts: HostFacts) -> None:
        return None

    def noop_reason(self, facts: HostFacts) -> str:
        return "facts are fresh"

    def describe(self) -> str:
        return self.name or "facts: gather again"

    def apply(self, conn: Connection, facts: HostFacts, io: StepIO) -> Result:
        fresh = facts_mod.gather(conn, self.later_queries, timeout=self.timeout or 60, brief=True)
        return Result(OK, message="facts gathered again", facts=fresh)

    def to_ansible(self, index: int = 0) -> list[dict[str, Any]]:
        return [{**self.ansible_common(), "ansible.builtin.setup": {}}]
