"""Volumes sent by reference: a path under the server's data root, and the id the client hashed.

`resolve_under_root` turns the client's relative path into a file inside the root in an
accepted format (typed errors for an escape, a symlink loop, a NUL byte, another format).
`load_referenced` reads the file once, checks that those bytes hash to the declared id, and
decodes the same bytes: a file rewritten between hashing and decoding cannot put another
volume's voxels under this id. A MetaImage or NRRD header naming a detached data file inside
the root is decoded from the header bytes that were hashed and the data file's bytes read once
right after them (both copied to a private folder): a header or data file rewritten meanwhile
is never decoded. The id covers the header only, so the protocol cannot tell a data file
changed under an unchanged header.
"""
from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterable
from pathlib import Path

from ctbench.errors import CtbenchError, InvalidVolume, UnsupportedTransport, VolumeOutsideDataRoot, VolumeTooLarge
from ctbench.preprocess.volume import Volume, load_volume_bytes, read_image_checked, read_volume_file, volume_from_sitk
from ctbench.preprocess.volume_formats import (
    DEFAULT_FORMATS,
    check_data_files_inside,
    format_of,
    named_data_file,
    with_data_file,
)

__all__ = ["load_referenced", "resolve_under_root"]

_ATTACHED_SUFFIX = {"metaimage": ".mha", "nrrd": ".nrrd"}  # what SimpleITK reads a one-file copy as


def resolve_under_root(root: Path | None, relative: str, formats: Iterable[str] = DEFAULT_FORMATS) -> Path:
    """The file `relative` names under `root`, after following symlinks, in an accepted format.

    Raises `UnsupportedTransport` without a root, `InvalidVolume` for a path that cannot be
    resolved (NUL byte, symlink loop), `VolumeOutsideDataRoot` for one that leaves the root
    (whether or not it exists: nothing outside is opened), `UnsupportedVolumeFormat` otherwise.
    """
    if root is None:
        raise UnsupportedTransport("this server has no data root: send volumes inline")
    root = Path(root).resolve()
    try:
        path = (root / relative).resolve()
    except (ValueError, OSError, RuntimeError):  # NUL byte; symlink loop (RuntimeError before 3.13)
        raise InvalidVolume(f"{relative!r} is not a usable path (a NUL byte or a symlink loop)") from None
    if not path.is_relative_to(root):
        raise VolumeOutsideDataRoot(f"{relative!r} resolves outside the server's data root")
    format_of(path.name, formats)
    return path


def load_referenced(
    path: Path, volume_id: str, root: Path, formats: Iterable[str] = DEFAULT_FORMATS, max_bytes: int | None = None
) -> Volume:
    """Read `path` (from `resolve_under_root`) once, verify its SHA-256 is `volume_id`, decode it.

    `max_bytes` bounds the decoded size (voxels x 4 bytes), checked from the header first.
    """
    fmt = format_of(path.name, formats)
    where = path.name
    data = read_volume_file(path)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    if digest != volume_id:
        raise InvalidVolume(f"{where}: the file's bytes hash to {digest}, not the declared {volume_id}")
    if fmt == "nifti":
        return load_volume_bytes(data, path.name, max_bytes=max_bytes, where=where)
    check_data_files_inside(path, data, fmt, Path(root), where)
    named = named_data_file(data, fmt, where)
    with tempfile.TemporaryDirectory(prefix="ctbench-ref-") as tmp:
        if named is None:
            copy = Path(tmp) / ("volume" + _ATTACHED_SUFFIX[fmt])
            _write(copy, data)
        else:  # decode the hashed header next to the data file's bytes, both read once
            copy = Path(tmp) / ("volume" + path.suffix.lower())
            _write(Path(tmp) / "volume.data", _read_data_file(path.parent / named, where, max_bytes))
            _write(copy, with_data_file(data, fmt, "volume.data"))
        del data
        try:
            return volume_from_sitk(read_image_checked(copy, max_bytes), where)
        except InvalidVolume as exc:
            exc.args = tuple(a.replace(str(copy), where) if isinstance(a, str) else a for a in exc.args)
            raise


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


def _read_data_file(path: Path, where: str, max_bytes: int | None) -> bytes:
    """A detached data file's bytes, refused unread when larger than any volume within the bound
    could store (8 bytes per voxel at most, against `max_bytes`' 4)."""
    try:
        size = path.resolve().stat().st_size
        if max_bytes is not None and size > 2 * max_bytes:
            raise VolumeTooLarge(f"{where}: its data file holds {size} bytes, over the bound of {max_bytes}")
        return read_volume_file(path.resolve())
    except VolumeTooLarge:
        raise
    except (CtbenchError, OSError):
        raise InvalidVolume(f"{where}: its data file cannot be read") from None
