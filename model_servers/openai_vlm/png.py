"""RGB slices -> PNG bytes and data: URIs, with the standard library only (no imaging package)."""
from __future__ import annotations

import base64
import struct
import zlib

import numpy as np

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def encode_png(image: np.ndarray, level: int = 6) -> bytes:
    """One (rows, cols, 3) uint8 RGB image -> an 8-bit truecolour PNG (row 0 is the top row)."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"encode_png takes (rows, cols, 3) uint8, got {image.shape} {image.dtype}")
    rows, cols = image.shape[:2]
    scanlines = np.concatenate([np.zeros((rows, 1), np.uint8), image.reshape(rows, cols * 3)], axis=1)
    header = struct.pack(">IIBBBBB", cols, rows, 8, 2, 0, 0, 0)  # 8 bits, RGB, deflate, no filter, no interlace
    return _SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(scanlines.tobytes(), level)) + _chunk(b"IEND", b"")


def decode_png(data: bytes) -> np.ndarray:
    """The inverse of `encode_png` (8-bit RGB, no interlace, filter 0 rows): what an endpoint
    reading the data URI sees. Other PNGs raise ValueError saying what differs."""
    if not data.startswith(_SIGNATURE):
        raise ValueError("not a PNG (signature missing)")
    offset, header, idat = len(_SIGNATURE), None, []
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        tag, body = data[offset + 4:offset + 8], data[offset + 8:offset + 8 + length]
        if tag == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif tag == b"IDAT":
            idat.append(body)
        offset += 12 + length
    if header is None or header[2:] != (8, 2, 0, 0, 0):
        raise ValueError(f"decode_png reads 8-bit RGB PNGs without interlace only, got IHDR {header}")
    cols, rows = header[:2]
    scanlines = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8).reshape(rows, 1 + cols * 3)
    if scanlines[:, 0].any():
        raise ValueError("decode_png reads unfiltered rows only (filter type 0)")
    return scanlines[:, 1:].reshape(rows, cols, 3).copy()


def png_data_uri(image: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(encode_png(image)).decode("ascii")


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
