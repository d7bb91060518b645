"""A folder that holds only a run's volumes, for model containers to mount as their data root.

A data root usually holds more than volumes: the dataset file with every answer, the phantom's
ground truth, reports. A model container must see none of it, so the docker backend mounts a
view instead: the run's volume files, at the same relative paths, hard-linked into a fresh
folder (no copy, no extra space). A volume that cannot be hard-linked (another filesystem, or a
file the runner may not link) is listed for a bind mount of that one file instead.
"""
from __future__ import annotations

import errno
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ctbench.errors import DatasetError


@dataclass
class VolumeView:
    folder: Path  # mount this read-only as the container's data root
    linked: list[str] = field(default_factory=list)  # relative paths hard-linked into `folder`
    bind: dict[str, Path] = field(default_factory=dict)  # relative path -> file to bind-mount there
    missing: list[str] = field(default_factory=list)  # not present (the server reports them per item)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def build_volume_view(data_root: Path, volumes: list[str], parent: Path) -> VolumeView:
    """A new view under `parent` holding `volumes` (paths relative to `data_root`)."""
    parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="volume-view-", dir=parent))
    folder.chmod(0o755)  # the containers' user must traverse it
    view = VolumeView(folder)
    for relative in sorted(set(volumes)):
        parts = PurePosixPath(relative).parts
        if not parts or PurePosixPath(relative).is_absolute() or ".." in parts:
            view.remove()
            raise DatasetError(f"volume path {relative!r} is not inside the data root", data_root)
        source = (data_root / relative).resolve()
        if not source.is_file():
            view.missing.append(relative)
            continue
        target = folder.joinpath(*parts)
        _make_dirs(folder, target.parent)
        try:
            os.link(source, target)
            view.linked.append(relative)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EACCES, errno.EMLINK):
                view.remove()
                raise
            target.touch(mode=0o644)  # the mount point of that file's bind mount
            view.bind[relative] = source
    return view


def _make_dirs(root: Path, folder: Path) -> None:
    missing = []
    while folder != root and not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir()
        path.chmod(0o755)
