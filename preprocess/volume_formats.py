"""Which file formats a volume may come in, and the formats whose header names other files.

A model card declares the formats it accepts by reference (`FORMATS` keys; NIfTI by default).
Formats with a detached or listed data file (MetaImage ``ElementDataFile``, NRRD ``data file``)
would let a header inside the data root pull in any file the server can read, so the named
file must resolve inside the root; lists and numbered patterns of data files are refused. The
refusal never says whether an outside file exists: the named path is resolved, never opened.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ctbench.errors import VolumeOutsideDataRoot
from ctbench.preprocess.volume_errors import InvalidVolume, UnsupportedVolumeFormat

__all__ = ["DEFAULT_FORMATS", "FORMATS", "check_data_files_inside", "format_of", "named_data_file", "with_data_file"]

#: format name -> file name suffixes. Only these can be declared in a model card.
FORMATS: dict[str, tuple[str, ...]] = {
    "nifti": (".nii", ".nii.gz"),
    "metaimage": (".mha", ".mhd"),
    "nrrd": (".nrrd", ".nhdr"),
}
DEFAULT_FORMATS: tuple[str, ...] = ("nifti",)
_HEADER_SCAN_BYTES = 1 << 16  # text headers are a few hundred bytes; data follows them


def format_of(name: str, accepted: Iterable[str] = DEFAULT_FORMATS) -> str:
    """The format of file `name` if `accepted` lists it, else `UnsupportedVolumeFormat`."""
    accepted = tuple(accepted)
    unknown = [f for f in accepted if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown volume formats {unknown}; known: {', '.join(FORMATS)}")
    lowered = name.lower()
    for fmt in accepted:
        if lowered.endswith(FORMATS[fmt]):
            return fmt
    suffixes = ", ".join(s for fmt in accepted for s in FORMATS[fmt])
    raise UnsupportedVolumeFormat(f"{Path(name).name}: this server accepts volumes as {suffixes} only")


def named_data_file(header: bytes, fmt: str, where: str) -> str | None:
    """The data file a MetaImage / NRRD header names, or None when the voxels follow the header.

    Raises `UnsupportedVolumeFormat` for a list or a numbered pattern of data files.
    """
    if fmt == "nifti":
        return None
    text = header[:_HEADER_SCAN_BYTES].decode("latin-1")
    if fmt == "metaimage":
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip().lower() == "elementdatafile":
                return _single_file(value.strip(), "LOCAL", where)
        return None
    for line in text.splitlines():  # NRRD: "key: value" lines up to the first blank line
        if not line.strip():
            break
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("data file", "datafile"):
            return _single_file(value.strip(), None, where)
    return None


def _single_file(value: str, local: str | None, where: str) -> str | None:
    if local is not None and value.upper() == local:
        return None
    if value.upper() == "LIST" or "%" in value or not value:
        raise UnsupportedVolumeFormat(f"{where}: a list or pattern of data files is not accepted by reference")
    return value


def check_data_files_inside(header_path: Path, header: bytes, fmt: str, root: Path, where: str) -> None:
    """Refuse a header whose named data file resolves outside `root` (the file is never opened)."""
    named = named_data_file(header, fmt, where)
    if named is None:
        return
    try:
        target = (header_path.parent / named).resolve()
    except (OSError, ValueError, RuntimeError):
        raise InvalidVolume(f"{where}: names a data file that is not a usable path") from None
    if not target.is_relative_to(root.resolve()):
        raise VolumeOutsideDataRoot(f"{where}: names a data file outside the server's data root")


def with_data_file(header: bytes, fmt: str, name: str) -> bytes:
    """`header` (MetaImage / NRRD) with its named data file replaced by `name`, every other byte kept.

    Used to decode a detached volume from bytes read once: the header that was hashed, next to a
    copy of the data file read right after it, so a file rewritten meanwhile cannot be decoded.
    """
    keys = ("elementdatafile",) if fmt == "metaimage" else ("data file", "datafile")
    separator = "=" if fmt == "metaimage" else ":"
    lines = header.decode("latin-1").splitlines(keepends=True)
    for index, line in enumerate(lines):
        key, sep, _ = line.partition(separator)
        if sep and key.strip().lower() in keys:
            ending = line[len(line.rstrip("\r\n")):]
            lines[index] = f"{key}{sep} {name}{ending}"
            return "".join(lines).encode("latin-1")
    raise ValueError(f"the {fmt} header names no data file")
