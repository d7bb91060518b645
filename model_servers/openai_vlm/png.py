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


def png_data_uri(image: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(encode_png(image)).decode("ascii")


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
