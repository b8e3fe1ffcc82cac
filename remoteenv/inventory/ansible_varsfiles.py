"""`group_vars/` and `host_vars/` beside an Ansible inventory, found and read as Ansible reads them.

Ansible's host_group_vars plugin, for a group or host NAME, in the inventory's folder:
- takes the first of `group_vars/NAME` (a folder or a file), `NAME.yml`, `NAME.yaml`, `NAME.json` that
  exists, so a folder `group_vars/all/` hides a file `group_vars/all.yml` beside it;
- in a folder, reads every file (sorted by name, sub-folders without a dot in their name recursively)
  whose name has no extension or ends in .yml, .yaml or .json, skipping hidden files and `name~` backups;
- merges the files in that order, each top-level key replacing the one before; an empty file adds nothing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remoteenv import paths, yamlio
from remoteenv.errors import ConfigError

_EXTENSIONS = (".yml", ".yaml", ".json")
_MAX_FILES = 10_000  # vars files one inventory folder may hold (a wrong folder should not take minutes)


@dataclass
class VarsLayer:
    """The variables of one vars file, with the `file:line` of each."""

    path: Path
    vars: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)


class VarsFiles:
    """The vars files of one inventory folder, read once each."""

    def __init__(self, basedir: Path) -> None:
        self.basedir = Path(os.path.realpath(basedir))
        self._cache: dict[Path, VarsLayer | None] = {}
        self._groups: dict[str, list[VarsLayer]] = {}  # every host of a group asks for the same files
        self._present = {sub: (self.basedir / sub).is_dir() for sub in ("group_vars", "host_vars")}

    def group(self, name: str) -> list[VarsLayer]:
        if name not in self._groups:
            self._groups[name] = self._layers("group_vars", name)
        return self._groups[name]

    def host(self, name: str) -> list[VarsLayer]:
        return self._layers("host_vars", name)

    def _layers(self, subdir: str, name: str) -> list[VarsLayer]:
        if not self._present[subdir] or not name or name.startswith(os.sep) or "/" in name:
            return []  # Ansible skips names like /path/to/chroot; a '/' would leave the folder
        base = self.basedir / subdir / name
        for ext in ("", *_EXTENSIONS):
            candidate = base.with_name(base.name + ext)
            if candidate.is_dir():
                files = self._folder(candidate)
            elif candidate.exists():
                files = [candidate]
            else:
                continue
            layers = [self._read(f) for f in files]
            return [layer for layer in layers if layer is not None]
        return []

    def _folder(self, folder: Path) -> list[Path]:
        found: list[Path] = []
        for entry in sorted(os.listdir(folder)):
            if entry.startswith(".") or entry.endswith("~"):
                continue
            full = folder / entry
            ext = os.path.splitext(entry)[1]
            if full.is_dir() and not ext:
                found.extend(self._folder(full))
            elif full.is_file() and (not ext or ext in _EXTENSIONS):
                found.append(full)
            if len(found) > _MAX_FILES:
                raise ConfigError(f"{folder}: more than {_MAX_FILES:,} vars files", "is this the right folder?")
        return found

    def _read(self, path: Path) -> VarsLayer | None:
        if path not in self._cache:
            self._cache[path] = _load(path)
        return self._cache[path]


def _load(path: Path) -> VarsLayer | None:
    text = paths.read_text_file(path, "vars file")
    if text.lstrip().startswith("$ANSIBLE_VAULT"):
        raise ConfigError(f"{path}: is encrypted with ansible-vault, which remoteenv does not decrypt",
                          "decrypt it (ansible-vault decrypt), or keep the connection settings in a plain file")
    data: Any = None
    if path.suffix == ".json" or text.lstrip().startswith("{"):
        try:  # Ansible reads JSON first; YAML would read most JSON too, but not all of it
            data = json.loads(text)
            layer = VarsLayer(path)
            if isinstance(data, dict):
                layer.vars = {str(k): v for k, v in data.items()}
                layer.origins = dict.fromkeys(layer.vars, str(path))
                return layer if layer.vars else None
        except ValueError:
            data = None
    if data is None:
        data = yamlio.load_text(text, str(path))
    if data is None or data == {}:
        return None  # an empty file adds nothing
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a vars file must be a mapping of variables, not {yamlio.kind_of(data)}")
    layer = VarsLayer(path)
    for key, value in data.items():
        layer.vars[str(key)] = value
        layer.origins[str(key)] = yamlio.where(str(path), data, key)
    return layer
