"""The `conda` step: a working Miniconda, Miniforge, micromamba or venv at a prefix, with managed settings.

What is on the host is read in the probe's round trip (remoteenv's stamp in the prefix, the managed
settings' checksums, an installer already uploaded), so an install that is as wanted costs nothing.
An install runs remote/conda_install.sh, whose stages are each safe to repeat: an install cut short
is finished by running again.
"""

from __future__ import annotations

import difflib
import json
import math
import posixpath
from pathlib import Path
from typing import TYPE_CHECKING, Any

from remoteenv import __version__, condarc, distributions, downloads
from remoteenv.errors import ConfigError
from remoteenv.facts import Query
from remoteenv.scripts import script
from remoteenv.steps.base import (
    CHANGED,
    FAILED,
    OK,
    Change,
    Param,
    Result,
    Step,
    json_answer,
    register,
    remote_path,
    script_error,
    sh_path,
)

if TYPE_CHECKING:
    from remoteenv.facts import HostFacts
    from remoteenv.steps.io import StepIO
    from remoteenv.transport import Connection

VIA = ("auto", "host", "upload")
HOST_INSTALLERS = "~/.cache/remoteenv/installers"  # where installers are kept on hosts
STAMP = ".remoteenv/install.json"
WHEELHOUSE = "~/.remoteenv/wheelhouse"
# Room an install takes beyond its installer, when nothing better is known (CONDA_FACTS: ~400 MB base).
NEEDED_MB = {"miniconda": 600, "miniforge": 500, "micromamba": 100, "venv": 60}
_DOWNLOAD_FAILED = 10


@register("conda")
class Conda(Step):
    """Install a Python distribution on the host (unless it is there), with remoteenv's settings.

    Every parameter may also come from a variable `conda_<name>` (inventory group or host vars,
    playbook vars, --var): `conda_dist: miniforge` on a group installs Miniforge there.

    Parameters:
      dist                 miniconda (default), miniforge, micromamba or venv
      version              latest (default) or a pinned release, e.g. 25.5.1-1
      prefix               where (default ~/miniconda3, ~/miniforge3, ~/micromamba, ~/.remoteenv/venv)
      via                  auto (default: the host downloads, else remoteenv uploads), host, upload
      installer            a local installer file to upload as is (needs sha256)
      installer_url        download the installer from here instead (a mirror of the installers)
      sha256               the installer's SHA-256 (else a recorded or published one)
      mirror               tuna, ustc, bfsu or the URL of a mirror's anaconda folder (conda and pip)
      pip_index            pip's index URL (overrides the mirror's)
      wheelhouse           a local folder of wheels: uploaded, and pip uses only them (air-gapped hosts)
      accept_anaconda_tos  true: accept Anaconda's terms for Miniconda's default channels
      force                true: a prefix that is not a remoteenv install is moved aside, never deleted
      init_shell           true: run `conda init` for the person's login shell (edits its rc file; said)
      timeout              seconds before the install is stopped

    Example:

        steps:
          - conda:
              dist: miniforge
              mirror: tuna
    """

    PARAMS = (
        Param("dist", doc="miniconda, miniforge, micromamba or venv"),
        Param("version", doc="latest or a pinned release"),
        Param("prefix", doc="install folder on the host"),
        Param("via", doc="auto, host or upload"),
        Param("installer", doc="local installer file"),
        Param("installer_url", doc="where to download the installer"),
        Param("sha256", doc="the installer's SHA-256"),
        Param("mirror", doc="tuna, ustc, bfsu or a URL"),
        Param("pip_index", doc="pip index URL"),
        Param("wheelhouse", doc="local folder of wheels for air-gapped hosts"),
        Param("accept_anaconda_tos", kind=bool, doc="accept Anaconda's terms of service"),
        Param("force", kind=bool, doc="move a foreign prefix aside"),
        Param("init_shell", kind=bool, doc="run conda init for the login shell"),
        Param("timeout", kind=float, doc="seconds before the install is stopped"),
    )

    def __init__(self, params: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        variables = self.ctx.variables or {}

        def setting(name: str, default: Any = None) -> Any:
            value = self.params.get(name)
            if value in (None, ""):
                value = variables.get(f"conda_{name}")
            return default if value in (None, "") else value

        self.dist = distributions.get(str(setting("dist", "miniconda")))
        self.version = str(setting("version", "latest"))
        self.prefix = remote_path(str(setting("prefix", self.dist.default_prefix)))
        self.via = str(setting("via", "auto"))
        installer = setting("installer")
        self.installer = (self.ctx.base_dir / Path(str(installer)).expanduser()) if installer else None
        self.installer_url = setting("installer_url")
        self.sha256 = distributions.check_sha256(str(setting("sha256"))) if setting("sha256") else None
        self.mirror = condarc.mirror(setting("mirror"), setting("pip_index"))
        wheels = setting("wheelhouse")
        self.wheelhouse = (self.ctx.base_dir / Path(str(wheels)).expanduser()) if wheels else None
        self.accept_tos = _truth(setting("accept_anaconda_tos", False))
        self.force = _truth(setting("force", False))
        self.init_shell = _truth(setting("init_shell", False))
        if setting("timeout") is not None:
            self.timeout = float(setting("timeout"))
        if self.via not in VIA:
            raise ConfigError(f"{self.ctx.where}: via {self.via!r} is not one of {', '.join(VIA)}",
                              "auto lets the host download and falls back to an upload")
        self._wheels: dict[str, Path] | None = None

    @classmethod
    def validate(cls, params: dict[str, Any], where: str) -> None:
        if params.get("installer") and not params.get("sha256"):
            raise ConfigError(f"{where}: a local installer needs its sha256",
                              "sha256sum FILE prints it; remoteenv checks it before the installer runs")

    # -- local inputs ----------------------------------------------------------------------------
    def prepare(self) -> None:
        if self.installer is not None:
            if not self.installer.is_file():
                raise ConfigError(f"{self.ctx.where}: installer {self.installer} is not a file",
                                  "give the path of a downloaded installer")
            if self.sha256 is None:
                raise ConfigError(f"{self.ctx.where}: installer {self.installer} needs --sha256",
                                  "sha256sum FILE prints it; remoteenv checks it before the installer runs")
        if self.wheelhouse is not None:
            self.wheels()
        if self.dist.needs_tos and not self.accept_tos and not (self.mirror and self.mirror.conda_base):
            raise ConfigError(
                "Miniconda's default channels need Anaconda's terms of service accepted, "
                "and remoteenv accepts them only when you say so",
                "re-run with --accept-anaconda-tos (or var conda_accept_anaconda_tos: true), "
                "or use --dist miniforge (conda-forge, no such terms)")

    def wheels(self) -> dict[str, Path]:
        """The wheelhouse's wheels by file name."""
        if self._wheels is None:
            assert self.wheelhouse is not None
            if not self.wheelhouse.is_dir():
                raise ConfigError(f"wheelhouse {self.wheelhouse} is not a folder", "pip download -d DIR makes one")
            self._wheels = {p.name: p for p in sorted(self.wheelhouse.iterdir())
                            if p.is_file() and p.suffix in (".whl", ".gz", ".zip")}
        return self._wheels

    # -- what the host has --------------------------------------------------------------------------
    def _stamp_query(self) -> Query:
        return Query("read", posixpath.join(self.prefix, STAMP))

    def _settings_queries(self) -> dict[str, Query]:
        # Read whole (they are small): a changed setting is shown as a diff in the plan.
        return {"condarc": Query("read", posixpath.join(self.prefix, ".condarc")),
                "pipconf": Query("read", posixpath.join(self.prefix, "pip.conf"))}

    def _installer_query(self, filename: str) -> Query:
        return Query("file", posixpath.join(HOST_INSTALLERS, filename))

    def _prefix_query(self) -> Query:
        return Query("exists", self.prefix)

    def _marker_query(self) -> Query:
        return Query("exists", self.prefix + ".remoteenv-installing")

    def _room_query(self) -> Query:
        """Whether the filesystem PREFIX goes on (its nearest existing folder) has the room needed."""
        parent = sh_path(posixpath.dirname(self.prefix) or "~")
        return Query("cmd", f"d={parent}; while [ ! -d \"$d\" ]; do d=$(dirname \"$d\"); done; "
                            f"[ \"$(df -Pk \"$d/\" | awk 'NR == 2 {{ print $4 }}')\" -ge {self._need_kib()} ]")

    def _sums_query(self) -> Query:
        return Query("read", posixpath.join(WHEELHOUSE, "SHA256SUMS"))

    def queries(self) -> list[Query]:
        out = [self._stamp_query(), self._prefix_query(), self._marker_query(), self._room_query(),
               *self._settings_queries().values()]
        if self.dist.name != "venv":
            name = self.installer.name if self.installer is not None else None
            out.append(self._installer_query(name or self._catalog_name()))
        if self.wheelhouse is not None:
            out.append(self._sums_query())
        return out

    def _stamp(self, facts: HostFacts) -> dict[str, Any] | None:
        return json_answer(facts, self._stamp_query())

    def _wanted_settings(self, facts: HostFacts) -> dict[str, str | None]:
        home = facts.home or "~"
        wheelhouse = (home + WHEELHOUSE[1:]) if self.wheelhouse is not None else None
        rc = condarc.condarc(self.dist, self.mirror) if self.dist.conda else None
        return {"condarc": _file_text(rc), "pipconf": _file_text(condarc.pip_conf(self.mirror, wheelhouse))}

    def _missing_wheels(self, facts: HostFacts) -> list[str]:
        if self.wheelhouse is None:
            return []
        answer = facts.answer(self._sums_query())
        have = set(answer.text.splitlines()) if answer is not None else set()
        return [name for name, path in self.wheels().items() if f"{_sha(path)}  {name}" not in have]

    def _diffs(self, facts: HostFacts) -> dict[str, str]:
        """The managed settings that differ from what remoteenv wants: file name -> unified diff."""
        out = {}
        for key, text in self._wanted_settings(facts).items():
            have = facts.answer(self._settings_queries()[key])
            if text is not None and (have is None or have.text != text):
                name = ".condarc" if key == "condarc" else "pip.conf"
                old = have.text if have is not None else ""
                where = f"{self.prefix}/{name}"
                out[name] = "".join(difflib.unified_diff(old.splitlines(True), text.splitlines(True),
                                                         f"{where} (now)", f"{where} (wanted)"))
        return out

    def _state(self, facts: HostFacts) -> tuple[str, str]:
        """(state, why): installed | resume | foreign | absent."""
        stamp = self._stamp(facts)
        if stamp is not None:
            if stamp.get("dist") != self.dist.name:
                return "foreign", f"{self.prefix} holds {stamp.get('dist')}, not {self.dist.name}"
            if self.version != "latest" and stamp.get("version") not in (self.version, None):
                return "foreign", f"{self.prefix} holds {self.dist.name} {stamp.get('version')}, not {self.version}"
            return "installed", f"{self.dist.name} is installed in {self.prefix}"
        if facts.answer(self._marker_query()):
            return "resume", f"an install into {self.prefix} was cut short"
        if facts.answer(self._prefix_query()):
            return "foreign", f"{self.prefix} exists but is not a {self.dist.name} install made by remoteenv"
        return "absent", f"{self.prefix} does not exist"

    def check(self, facts: HostFacts) -> Change | None:
        state, why = self._state(facts)
        what = "a venv" if self.dist.name == "venv" else f"{self.dist.name} {self.version}"
        if state == "installed":
            diffs = self._diffs(facts)
            todo = list(diffs)
            wheels = self._missing_wheels(facts)
            if wheels:
                todo.append(f"upload {len(wheels)} wheel(s)")
            if self.accept_tos and not (self._stamp(facts) or {}).get("tos"):
                todo.append("accept Anaconda's terms")
            if self.init_shell and self.dist.is_installer and not (self._stamp(facts) or {}).get("init_shell"):
                todo.append(f"conda init {posixpath.basename(facts.shell) or 'sh'}")
            return Change(f"update {', '.join(todo)} in {self.prefix}", why,
                          diff="".join(diffs.values()) or None) if todo else None
        if state == "foreign":
            if not self.force:
                return Change(f"refuse: {why}", "remoteenv never replaces what it did not make; "
                              "--force moves it aside (never deletes)")
            return Change(f"move {self.prefix} aside, install {what} into {self.prefix}", why)
        if facts.answer(self._room_query()) not in (None, 0):
            return Change(f"refuse: not enough free space for {what} in {self.prefix}",
                          f"{self._need_kib() // 1024} MiB needed; free some space or choose another --prefix")
        return Change(f"{'finish installing' if state == 'resume' else 'install'} {what} into {self.prefix}"
                      + self._transfer_note(), why)

    def _transfer_note(self) -> str:
        if self.dist.name == "venv":
            return " (the host's python3 -m venv)"
        if self.installer is not None:
            return f", upload {self.installer.stat().st_size / 1e6:.0f} MB"
        return {"host": ", downloaded by the host", "upload": ", downloaded here and uploaded",
                "auto": ", downloaded by the host (else uploaded)"}[self.via]

    def noop_reason(self, facts: HostFacts) -> str:
        return f"{self.dist.name} is installed in {self.prefix} with remoteenv's settings"

    def describe(self) -> str:
        return self.name or f"conda: {self.dist.name} in {self.prefix}"

    # -- doing it -----------------------------------------------------------------------------------
    def apply(self, conn: Connection, facts: HostFacts, io: StepIO) -> Result:
        state, why = self._state(facts)
        if state == "foreign" and not self.force:
            return Result(FAILED, message=f"{why} (hint: --force moves it aside; it is never deleted)")
        args = self._args(facts)
        if state != "installed" and facts.answer(self._room_query()) not in (None, 0):
            # Nothing is sent: the script stops at its disk check and names free and needed space.
            return self._run(conn, io, args, state)
        if self.wheelhouse is not None:
            self._upload_wheels(conn, facts, io)
        if state == "installed" or self.dist.name == "venv":
            return self._run(conn, io, args, state)
        if self.installer is not None or self.via == "upload":
            self._upload_installer(conn, facts, io, args)
            return self._run(conn, io, args, state)
        installer = self._installer(facts)
        args[3] = self.installer_url or installer.url
        if not args[4] and not args[5] and installer.sums_page:
            try:
                args[4] = self._published_sha256(installer) or ""
            except downloads.DownloadFailed as exc:
                io.write(f"remoteenv: {exc.message}\n")
            if not args[4]:
                return Result(FAILED, message=f"no SHA-256 to check {installer.filename} against "
                                              f"(hint: pass --sha256 from {installer.sums_page})")
        result = self._run(conn, io, args, state, may_fall_back=self.via == "auto")
        if result is not None:
            return result
        io.write(f"remoteenv: the host could not download {args[3]}; uploading it from here instead\n")
        args[3] = ""
        self._upload_installer(conn, facts, io, args)
        return self._run(conn, io, args, state)

    def _catalog_name(self) -> str:
        """The installer's file name before the host's arch is known: x86_64's (the usual case)."""
        try:
            return distributions.installer(self.dist, self.version, "x86_64").filename
        except ConfigError:
            return "installer"

    def _installer(self, facts: HostFacts) -> distributions.Installer:
        return distributions.installer(self.dist, self.version, facts.arch or "x86_64")

    def _args(self, facts: HostFacts) -> list[str]:
        settings = self._wanted_settings(facts)
        stamp = self._stamp(facts) or {}
        if self.dist.name == "venv":
            filename, sha, sha_url = "", "", ""
        else:
            inst = self._installer(facts)
            filename = self.installer.name if self.installer is not None else inst.filename
            known = distributions.KNOWN_SHA256.get(filename)
            sha = self.sha256 or (known[0] if known else "")
            sha_url = "" if sha else (inst.sha256_url or "")
        tos = self.accept_tos and self.dist.conda and not stamp.get("tos")
        shell = posixpath.basename(facts.shell) if self.init_shell and self.dist.is_installer else ""
        init = shell if shell and stamp.get("init_shell") != shell else ""
        new_stamp = {"dist": self.dist.name, "version": self.version, "prefix": self.prefix,
                     "installer": filename or None, "sha256": sha or None,
                     "tos": bool(self.accept_tos or stamp.get("tos")),
                     "init_shell": shell or stamp.get("init_shell"), "remoteenv": __version__}
        return [self.dist.name, self.prefix, posixpath.join(HOST_INSTALLERS, filename) if filename else "",
                "", sha, sha_url, str(self._need_kib()), "1" if self.force else "0", "1" if tos else "0",
                json.dumps(new_stamp, sort_keys=True), (settings["condarc"] or "").rstrip("\n"),
                (settings["pipconf"] or "").rstrip("\n"), init]

    def _need_kib(self) -> int:
        size_mb = self.installer.stat().st_size / 1e6 if self.installer is not None else 0
        # An installer unpacks to about three times its size, plus room for the file itself.
        need_mb = max(NEEDED_MB[self.dist.name], 4 * size_mb) + 50
        return math.ceil(need_mb * 1000 / 1.024)

    def _run(self, conn: Connection, io: StepIO, args: list[str], state: str,
             may_fall_back: bool = False) -> Result | None:
        result = conn.run_script(script("conda_install.sh"), args, timeout=self.timeout, on_output=io.write)
        if result.exited == _DOWNLOAD_FAILED and may_fall_back:
            return None
        kind, message = script_error(result.stdout + result.stderr)
        if not result.ok:
            return Result(FAILED, message=message or f"the install script exited {result.exited}",
                          data={"stage": kind} if kind else {})
        output = result.stdout + result.stderr
        changed = state != "installed" or "remoteenv: wrote" in output or args[8] == "1" or bool(args[12])
        return Result(CHANGED if changed else OK, message=f"{self.dist.name} ready in {self.prefix}",
                      data={"prefix": self.prefix, "dist": self.dist.name})

    def _published_sha256(self, inst: distributions.Installer) -> str | None:
        """The sum its publisher lists for the installer, read from this side."""
        if inst.sha256_url:
            return distributions.parse_sha256(downloads.read_text(inst.sha256_url), inst.filename)
        if inst.sums_page:
            return distributions.sha256_from_index(downloads.read_text(inst.sums_page, limit=1 << 22),
                                                   inst.filename)
        return None

    def _upload_installer(self, conn: Connection, facts: HostFacts, io: StepIO, args: list[str]) -> None:
        """Get the installer here (cached) and onto the host, both checked by SHA-256."""
        if self.installer is not None:
            local = self.installer
            sha = self.sha256
        else:
            inst = self._installer(facts)
            sha = args[4] or self._published_sha256(inst)
            if sha is None:
                raise ConfigError(f"no SHA-256 known for {inst.filename}",
                                  "pass --sha256 (from the installer's download page) to check it")
            url = self.installer_url or inst.url
            io.write(f"remoteenv: downloading {url} here\n")
            local = downloads.fetch(url, inst.filename, sha,
                                    on_progress=lambda done, total: io.progress(done / total) if total else None)
        got = downloads.sha256_file(local)
        if sha and got != sha:
            raise ConfigError(f"installer {local} has SHA-256 {got}, not {sha}: nothing was installed",
                              "check the file and the checksum you gave")
        args[4] = got
        args[5] = ""
        there = facts.answer(self._installer_query(posixpath.basename(args[2])))
        if there is not None and there.sha256 == got:
            io.write(f"remoteenv: the host already holds {posixpath.basename(args[2])} with that SHA-256\n")
            return
        io.write(f"remoteenv: uploading {local.name} ({local.stat().st_size / 1e6:.0f} MB)\n")
        conn.run(f"mkdir -p {sh_path(HOST_INSTALLERS)}", check=True, timeout=60)
        conn.put(local, args[2], mode=0o644, on_progress=lambda done, total: io.progress(done / total if total else 1))

    def _upload_wheels(self, conn: Connection, facts: HostFacts, io: StepIO) -> None:
        missing = self._missing_wheels(facts)
        if not missing:
            return
        conn.run(f"mkdir -p {sh_path(WHEELHOUSE)}", check=True, timeout=60)
        wheels = self.wheels()
        for n, name in enumerate(missing, 1):
            io.progress(n / len(missing), f"uploading wheel {name}")
            conn.put(wheels[name], posixpath.join(WHEELHOUSE, name), mode=0o644)
        sums = "".join(f"{_sha(path)}  {name}\n" for name, path in wheels.items())
        conn.put(sums.encode(), posixpath.join(WHEELHOUSE, "SHA256SUMS"), mode=0o644)

    def to_ansible(self, index: int = 0) -> list[dict[str, Any]]:
        raise ConfigError("the conda step has no Ansible equivalent yet",
                          "export the other steps, or run remoteenv conda install")


_SHA_CACHE: dict[Path, str] = {}


def _sha(path: Path) -> str:
    if path not in _SHA_CACHE:
        _SHA_CACHE[path] = downloads.sha256_file(path)
    return _SHA_CACHE[path]


def _file_text(text: str | None) -> str | None:
    """A managed file's text as the install script writes it: ending in exactly one newline."""
    return None if text is None else text.rstrip("\n") + "\n"


def _truth(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)
