"""Stand-in installers, channels and wheels for tests, in a folder the test hosts' users can read.

pytest's tmp_path is 0700; the testbed's own directory is reachable, so the share lives there, 0755.
"""

from __future__ import annotations

import os
from pathlib import Path

from fakes.conda import build_installer, channel


class Share:
    def __init__(self, bed, **build_options) -> None:
        self.dir = bed.dir / "conda-share"
        self.dir.mkdir(mode=0o755, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.channels = channel.build_standard_channels(self.dir / "channels")
        self.downloads = self.dir / "dl"
        self.build_options = build_options

    def installer(self, dist: str, **options) -> tuple[Path, str]:
        """A stand-in installer of `dist` and its SHA-256."""
        path = build_installer.build(self.downloads, dist=dist, channels_dir=self.channels,
                                     **{**self.build_options, **options})
        return path, build_installer.sha256_file(path)

    def wheels(self, house: Path, *patterns: str) -> Path:
        """A folder holding the wheelhouse's wheels that match `patterns` (all of them without any)."""
        folder = self.dir / "wheels"
        folder.mkdir(exist_ok=True)
        for pattern in patterns or ("*.whl",):
            for found in house.glob(pattern):
                (folder / found.name).write_bytes(found.read_bytes())
        return folder
