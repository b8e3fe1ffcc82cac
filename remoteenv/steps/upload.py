"""The `upload` step: make a remote file hold given bytes and mode, sent only when they differ."""

from __future__ import annotations

import hashlib
import posixpath
from pathlib import Path
from typing import TYPE_CHECKING, Any

from remoteenv import paths
from remoteenv.errors import ConfigError
from remoteenv.facts import Query
from remoteenv.steps import templating
from remoteenv.steps.base import (
    CHANGED,
    Change,
    Param,
    Result,
    Step,
    mode_text,
    register,
    remote_path,
    sh_path,
)

if TYPE_CHECKING:
    from remoteenv.facts import HostFacts
    from remoteenv.steps.io import StepIO
    from remoteenv.transport import Connection


# An upload's bytes are held in memory to be compared and templated: files, not disk images.
SRC_LIMIT = 256 * 1024 * 1024


@register("upload")
class Upload(Step):
    """Write a file on the host from a local file (`src`) or inline text (`content`).

    The file's SHA-256 and mode are asked in the probe round trip, so an unchanged file is not
    sent. The write is atomic: the bytes go to a temporary file beside `dest`, which is then
    renamed over it. Missing parent folders are made.

    Parameters:
      dest      the remote path (required); `~/` is the home folder, relative paths are under it
      src       a local file, relative to the playbook's folder
      content   the file's text (give `src` or `content`, not both)
      template  true: render `{{ var }}` placeholders in the file's text (default false)
      mode      octal permissions as a quoted string (default "0644")

    Example:

        steps:
          - name: shell settings
            upload:
              dest: ~/.config/remoteenv/env.sh
              content: |
                export PROJECT={{ project }}
              template: true
              mode: "0600"
          - upload:
              src: files/gitconfig
              dest: ~/.gitconfig
    """

    PARAMS = (
        Param("dest", required=True, doc="remote path"),
        Param("src", doc="local file, relative to the playbook"),
        Param("content", template=False, doc="the file's text"),
        Param("template", kind=bool, default=False, doc="render {{ var }} in the text"),
        Param("mode", default="0644", as_written=True, doc='octal mode as a string, e.g. "0644"'),
    )

    def __init__(self, params: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        p = self.params
        self.dest: str = p["dest"]
        self.src: str | None = p["src"] or None
        self.content: str | None = p["content"]
        self.template: bool = bool(p["template"])
        self.mode: str = str(p["mode"])
        self._data: bytes | None = None

    @classmethod
    def validate(cls, params: dict[str, Any], where: str) -> None:
        has_src, has_content = params.get("src") is not None, params.get("content") is not None
        if has_src == has_content:
            raise ConfigError(f"{where}: upload needs exactly one of 'src' or 'content'",
                              "src: a local file (relative to the playbook), or content: the text")
        if params.get("content") is not None and not isinstance(params["content"], str):
            raise ConfigError(f"{where}: upload content must be text", "quote it, or use a | block")
        mode = params.get("mode")
        if mode is not None and not (isinstance(mode, str) and templating.has_placeholder(mode)):
            mode_text(mode, where)

    # -- local side ---------------------------------------------------------------------------
    def local_path(self) -> Path:
        return (self.ctx.base_dir / Path(self.src).expanduser()) if self.src else Path()

    def prepare(self) -> None:
        self.mode = mode_text(self.mode, self.ctx.where_param("mode"))
        self.data()

    def data(self) -> bytes:
        """The bytes the remote file must hold (the template rendered with this host's variables)."""
        if self._data is not None:
            return self._data
        variables = self.ctx.variables or {}
        if self.src:
            path = self.local_path()
            try:
                raw = paths.read_regular_file(path, SRC_LIMIT, "upload src")
            except ConfigError as exc:
                raise ConfigError(f"{self.ctx.where_param('src')}: {exc.message}",
                                  exc.hint or "src is relative to the playbook's folder") from None
            if self.template:
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise ConfigError(f"{path}: a template must be UTF-8 text") from None
                raw = templating.render(text, variables, str(path), "the template", first_line=1).encode()
        else:
            text = self.content or ""
            if self.template:
                text = templating.render(text, variables, self.ctx.where_param("content"), "upload content")
            raw = text.encode("utf-8")
        self._data = raw
        return raw

    # -- remote side --------------------------------------------------------------------------
    @property
    def _target(self) -> str:
        return remote_path(self.dest)

    def _file_query(self) -> Query:
        return Query("file", self._target)

    def _parent_query(self) -> Query:
        return Query("exists", posixpath.dirname(self._target) or "~")

    def queries(self) -> list[Query]:
        return [self._file_query(), self._parent_query()]

    def check(self, facts: HostFacts) -> Change | None:
        state = facts.answer(self._file_query())
        data = self.data()
        if state is None:
            return Change(f"create {self.dest}", f"{self.dest} does not exist ({len(data)} bytes to write)")
        if state.sha256 != hashlib.sha256(data).hexdigest():
            return Change(f"update {self.dest}", f"content differs ({len(data)} bytes to write)")
        if state.mode != int(self.mode, 8):
            return Change(f"update {self.dest}", f"mode is {state.mode:04o}, want {int(self.mode, 8):04o}")
        return None

    def noop_reason(self, facts: HostFacts) -> str:
        return f"{self.dest} is up to date"

    def describe(self) -> str:
        return self.name or f"upload: {self.dest}"

    def apply(self, conn: Connection, facts: HostFacts, io: StepIO) -> Result:
        target = conn.expand(self._target)  # the home is known from the probe: no round trip
        parent = posixpath.dirname(target)
        if facts.answer(self._parent_query()) is not True and parent:
            conn.run(f"mkdir -p {sh_path(parent)}", check=True, timeout=self.timeout)
        data = self.data()
        conn.put(data, target, mode=int(self.mode, 8))
        return Result(CHANGED, message=f"wrote {len(data)} bytes, mode {self.mode}")

    def to_ansible(self, index: int = 0) -> list[dict[str, Any]]:
        parent = posixpath.dirname(self.dest)
        tasks: list[dict[str, Any]] = []
        if parent and parent not in ("~", "/"):
            tasks.append({"name": f"{self.describe()} (folder)",
                          "ansible.builtin.file": {"path": parent, "state": "directory"}})
        args: dict[str, Any] = {"dest": self.dest, "mode": self.mode}
        if self.src:
            args["src"] = str(self.local_path().resolve())
            module = "ansible.builtin.template" if self.template else "ansible.builtin.copy"
        else:
            text = self.content or ""
            # Ansible renders every module argument; text meant literally must say so.
            if not self.template and ("{{" in text or "{%" in text or "{#" in text):
                text = "{% raw %}" + text + "{% endraw %}"
            args["content"] = text
            module = "ansible.builtin.copy"
        tasks.append({**self.ansible_common(), module: args})
        return tasks
