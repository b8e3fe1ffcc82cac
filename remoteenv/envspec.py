"""Environment specs read on this side: environment.yml and requirements.txt, checked and normalised.

A spec is validated before any host is touched (YAML errors and wrong shapes name file:line), and
normalised so that its hash (the env's stamp) changes only when what would be installed changes:
comments, key order and the order of dependencies do not count.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from remoteenv import paths, yamlio
from remoteenv.errors import ConfigError

log = logging.getLogger("remoteenv.envspec")

KNOWN_KEYS = ("name", "channels", "dependencies", "variables", "prefix", "verify", "kernel")
SPEC_LIMIT = 4 * 1024 * 1024
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


PLATFORMS = {"x86_64": "linux-64", "aarch64": "linux-aarch64"}


@dataclass
class EnvSpec:
    # "conda" (environment.yml), "pip" (requirements.txt), "explicit" (conda's @EXPLICIT list of package
    # URLs: no solve, one platform) or "lock" (conda-lock.yml: per platform, conda URLs and pip pins)
    kind: str
    path: Path
    text: str  # the file as written: what is sent to the host
    name: str | None = None
    channels: list[str] = field(default_factory=list)
    conda: list[str] = field(default_factory=list)
    pip: list[str] = field(default_factory=list)
    verify: list[str] = field(default_factory=list)  # modules a build must import before it is swapped in
    kernel: bool | None = None  # None: when the env has ipykernel
    platform: str | None = None  # explicit: the one it was made for
    locked: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)  # lock: platform -> (urls, pins)

    def for_platform(self, machine: str) -> tuple[str, str | None]:
        """(the conda file to send, the pip requirements to send or None) for a host's `uname -m`."""
        platform = PLATFORMS.get(machine, machine)
        if self.kind == "explicit":
            if self.platform and self.platform != platform:
                raise ConfigError(f"{self.path}: an explicit spec for {self.platform} cannot build on {platform}",
                                  "export one from a host of the same platform, or use environment.yml")
            return self.text, None
        if self.kind == "lock":
            if platform not in self.locked:
                raise ConfigError(f"{self.path}: the lock has no {platform} packages",
                                  f"conda-lock -p {platform} adds them")
            urls, pins = self.locked[platform]
            explicit = f"# platform: {platform}\n@EXPLICIT\n" + "".join(u + "\n" for u in urls)
            return explicit, ("".join(p + "\n" for p in pins) or None)
        return self.text, None

    def normalised(self) -> dict:
        return {"kind": self.kind, "channels": list(self.channels), "conda": sorted(self.conda),
                "pip": sorted(self.pip), "verify": sorted(self.verify),
                "locked": {k: [sorted(u), sorted(p)] for k, (u, p) in sorted(self.locked.items())}}

    def digest(self, *context: str) -> str:
        """The stamp: the normalised spec plus what else decides the result (distribution, settings)."""
        data = json.dumps([self.normalised(), *context], sort_keys=True)
        return hashlib.sha256(data.encode()).hexdigest()[:16]

    @property
    def wants_kernel(self) -> bool:
        if self.kernel is not None:
            return self.kernel
        return any(package_name(d) == "ipykernel" for d in (*self.conda, *self.pip))


def check_name(name: str, where: str) -> str:
    if not _NAME.fullmatch(name):
        raise ConfigError(f"{where}: {name!r} is not a usable environment name",
                          "letters, digits, '.', '_' and '-', starting with a letter or digit")
    return name


def load(path: Path) -> EnvSpec:
    text = paths.read_text_file(path, "environment file", SPEC_LIMIT)
    if re.search(r"^@EXPLICIT\s*$", text, re.MULTILINE):
        return _explicit(path, text)
    if path.suffix in (".txt", ".in") or path.name.startswith("requirements"):
        return _requirements(path, text)
    data = yamlio.load_text(text, str(path))
    if isinstance(data, dict) and "package" in data and "metadata" in data:
        return _lock(path, text, data)
    return _environment_yml(path, text)


def _explicit(path: Path, text: str) -> EnvSpec:
    platform = re.search(r"^#\s*platform:\s*(\S+)", text, re.MULTILINE)
    urls = [line.strip() for line in text.split("\n") if line.strip() and not line.startswith(("#", "@"))]
    for number, line in enumerate(text.split("\n"), 1):
        if line.strip() and not line.startswith(("#", "@")) and "://" not in line:
            raise ConfigError(f"{path}:{number}: an explicit spec lists package URLs, one a line",
                              "conda list --explicit writes one")
    return EnvSpec("explicit", path, text, conda=urls, platform=platform.group(1) if platform else None)


def _lock(path: Path, text: str, data: dict) -> EnvSpec:
    src = str(path)
    packages = data.get("package")
    if not isinstance(packages, list):
        raise ConfigError(f"{yamlio.where(src, data, 'package')}: package must be a list", "see conda-lock's format")
    locked: dict[str, tuple[list[str], list[str]]] = {}
    for index, pkg in enumerate(packages):
        where = yamlio.where(src, packages, index)
        if not isinstance(pkg, dict) or not all(isinstance(pkg.get(k), str) for k in ("name", "version",
                                                                                        "manager", "platform")):
            raise ConfigError(f"{where}: a locked package needs name, version, manager and platform",
                              "see conda-lock's format")
        urls, pins = locked.setdefault(pkg["platform"], ([], []))
        if pkg["manager"] == "conda":
            if not isinstance(pkg.get("url"), str):
                raise ConfigError(f"{where}: a conda package needs its url", "see conda-lock's format")
            digest = (pkg.get("hash") or {}).get("sha256") or (pkg.get("hash") or {}).get("md5")
            urls.append(pkg["url"] + (f"#{digest}" if digest else ""))
        elif pkg["manager"] == "pip":
            pins.append(f"{pkg['name']}=={pkg['version']}")
        else:
            raise ConfigError(f"{where}: unknown manager {pkg['manager']!r}", "conda or pip")
    spec = EnvSpec("lock", path, text, locked=locked)
    first = next(iter(locked.values()), ([], []))
    spec.conda, spec.pip = list(first[0]), list(first[1])
    return spec


def _requirements(path: Path, text: str) -> EnvSpec:
    lines = []
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-e ", "--editable")):
            raise ConfigError(f"{path}:{number}: editable installs point at this machine's files",
                              "build a wheel (pip wheel .) and list it, or install from a package index")
        lines.append(line)
    return EnvSpec("pip", path, text, pip=lines)


def _environment_yml(path: Path, text: str) -> EnvSpec:
    data = yamlio.load_text(text, str(path))
    src = str(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{src}:1: an environment file is a mapping with 'dependencies:'",
                          "see conda's environment.yml format: name, channels, dependencies")
    for key in data:
        if key not in KNOWN_KEYS:
            log.warning("%s: unknown key '%s' in the environment file (conda ignores it)", yamlio.where(src, data, key),
                        key)
    spec = EnvSpec("conda", path, text)
    name = data.get("name")
    if name is not None:
        if not isinstance(name, str):
            raise ConfigError(f"{yamlio.where(src, data, 'name')}: name must be text", "name: torch")
        spec.name = check_name(name, yamlio.where(src, data, "name"))
    channels = data.get("channels") or []
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise ConfigError(f"{yamlio.where(src, data, 'channels')}: channels must be a list of names or URLs",
                          "channels: [conda-forge]")
    spec.channels = list(channels)
    deps = data.get("dependencies")
    if not isinstance(deps, list) or not deps:
        raise ConfigError(f"{yamlio.where(src, data, 'dependencies') if 'dependencies' in data else src + ':1'}: "
                          "dependencies must be a list of packages", "dependencies: [python=3.11, numpy]")
    for index, dep in enumerate(deps):
        where = yamlio.where(src, deps, index)
        if isinstance(dep, str):
            spec.conda.append(dep.strip())
        elif isinstance(dep, (int, float)) and not isinstance(dep, bool):
            spec.conda.append(str(dep))
        elif isinstance(dep, dict) and list(dep) == ["pip"]:
            pip = dep["pip"]
            if not isinstance(pip, list) or not all(isinstance(p, str) for p in pip):
                raise ConfigError(f"{where}: the pip: section must be a list of requirements",
                                  "- pip:\n    - requests==2.32.3")
            spec.pip.extend(p.strip() for p in pip)
        else:
            raise ConfigError(f"{where}: a dependency must be a package spec or a 'pip:' list, "
                              f"not {yamlio.kind_of(dep)}", "- numpy=1.26  or  - pip: [requests]")
    if spec.pip and not any(package_name(d) == "pip" for d in spec.conda):
        log.warning("%s: a pip: section without pip among the conda dependencies; conda adds it, "
                    "but naming it pins where it comes from", src)
    verify = data.get("verify") or []
    if not isinstance(verify, list) or not all(
            isinstance(v, str) and all(part.isidentifier() for part in v.split(".")) for v in verify):
        raise ConfigError(f"{yamlio.where(src, data, 'verify')}: verify must be a list of module names",
                          "verify: [numpy, torch.cuda]")
    spec.verify = list(verify)
    kernel = data.get("kernel")
    if kernel is not None and not isinstance(kernel, bool):
        raise ConfigError(f"{yamlio.where(src, data, 'kernel')}: kernel must be true or false", "kernel: true")
    spec.kernel = kernel
    return spec


def package_name(dep: str) -> str:
    """`numpy=1.26`, `conda-forge::numpy>=1`, `numpy[extra]==1` -> numpy."""
    dep = dep.split("::")[-1]
    return re.split(r"[\s=<>!~\[;@]", dep, maxsplit=1)[0].strip().lower()
