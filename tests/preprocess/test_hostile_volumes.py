"""Hostile volume files, by class: each gets a typed error that says what was wrong.

By-reference cases go through a real server over loopback (the SDK's servicer and an echo
model); file-level cases call the decoder directly. Every hostile file is built in tmp.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import struct
import tempfile
import zlib
from pathlib import Path

import grpc
import numpy as np
import pytest
import SimpleITK as sitk
from ctbench_test_models import EchoModel

from ctbench.errors import InvalidVolume, VolumeTooLarge
from ctbench.model_servers.sdk import ModelServer, ServerOptions
from ctbench.preprocess import nifti_decode
from ctbench.preprocess.referenced_volumes import load_referenced
from ctbench.preprocess.volume import Volume, load_volume, load_volume_bytes, save_volume
from ctbench.preprocess.volume_errors import TruncatedVolume, UnsupportedVoxelType
from ctbench.v1 import answer_volume_question_pb2 as pb
from ctbench.v1 import answer_volume_question_pb2_grpc as pb_grpc

SHAPE = (6, 5, 4)  # (k, j, i)


class EchoEveryFormat(EchoModel):
    name = "echo-every-format"
    volume_formats = ("nifti", "metaimage", "nrrd")


def vid(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def roots(tmp_path) -> tuple[Path, Path]:
    root, outside = tmp_path / "data", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.raw").write_bytes(np.arange(120, dtype="<i2").tobytes())
    return root, outside


def ask_by_reference(model, root: Path, path: str, volume_id: str) -> pb.Answer:
    server = ModelServer(model, ServerOptions(port=0, data_root=root))
    port = server.start()
    try:
        assert server.loaded.wait(10)
        requests = [
            pb.AnswerRequest(volume=pb.VolumeHeader(volume_id=volume_id, path=path)),
            pb.AnswerRequest(question=pb.Question(question_id="q::0", volume_id=volume_id, text="q?")),
        ]
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.AnswerVolumeQuestionStub(channel)
            answers = [r.answer for r in stub.Answer(iter(requests), timeout=20) if r.WhichOneof("item") == "answer"]
    finally:
        server.stop(0)
    assert len(answers) == 1
    return answers[0]


def _meta_header(data_file: str) -> str:
    return (
        "ObjectType = Image\nNDims = 3\nDimSize = 4 5 6\nElementType = MET_SHORT\n"
        f"ElementDataFile = {data_file}\n"
    )


def _nrrd_header(data_file: str) -> str:
    return (
        "NRRD0004\ntype: short\ndimension: 3\nsizes: 4 5 6\nencoding: raw\nendian: little\n"
        f"data file: {data_file}\n\n"
    )


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return path.name


def _attached_mha(root: Path, outside: Path) -> str:
    sitk.WriteImage(sitk.GetImageFromArray(np.ones(SHAPE, np.int16)), str(root / "attached.mha"))
    return "attached.mha"


def _symlink(root: Path, name: str, target: Path) -> str:
    os.symlink(target, root / name)
    return name


# (id, model, build(root, outside) -> relative path, expected error type)
HOSTILE_REFERENCES = [
    ("mha not declared by the card", EchoModel, _attached_mha, "UnsupportedVolumeFormat"),
    ("analyze pair is no declared format", EchoEveryFormat,
     lambda r, o: ((r / "v.img").write_bytes(b"\0" * 240), _write(r / "v.hdr", "x"))[1], "UnsupportedVolumeFormat"),
    ("mhd data file outside, relative", EchoEveryFormat,
     lambda r, o: _write(r / "v.mhd", _meta_header("../outside/secret.raw")), "VolumeOutsideDataRoot"),
    ("mha data file outside, absolute", EchoEveryFormat,
     lambda r, o: _write(r / "v.mha", _meta_header(str(o / "secret.raw"))), "VolumeOutsideDataRoot"),
    ("nhdr data file outside", EchoEveryFormat,
     lambda r, o: _write(r / "v.nhdr", _nrrd_header("../outside/secret.raw")), "VolumeOutsideDataRoot"),
    ("nhdr data file through a symlink out", EchoEveryFormat,
     lambda r, o: (_symlink(r, "link.raw", o / "secret.raw"), _write(r / "v.nhdr", _nrrd_header("link.raw")))[1],
     "VolumeOutsideDataRoot"),
    ("mhd list of data files", EchoEveryFormat,
     lambda r, o: _write(r / "v.mhd", _meta_header("LIST") + "a.raw\nb.raw\n"), "UnsupportedVolumeFormat"),
    ("nhdr numbered pattern of data files", EchoEveryFormat,
     lambda r, o: _write(r / "v.nhdr", _nrrd_header("../outside/s%03d.raw 1 6 1")), "UnsupportedVolumeFormat"),
    ("symlink loop", EchoModel, lambda r, o: _symlink(r, "loop.nii.gz", r / "loop.nii.gz"), "InvalidVolume"),
    ("symlink to a file outside", EchoModel, lambda r, o: _symlink(r, "out.nii", o / "secret.raw"), "VolumeOutsideDataRoot"),
    ("NUL byte in the path", EchoModel, lambda r, o: "a\0.nii.gz", "InvalidVolume"),
]


@pytest.mark.parametrize("model, build, expected", [c[1:] for c in HOSTILE_REFERENCES], ids=[c[0] for c in HOSTILE_REFERENCES])
def test_hostile_references_get_a_typed_error(roots, model, build, expected):
    root, outside = roots
    relative = build(root, outside)
    file = root / relative if "\0" not in relative else None
    volume_id = vid(file.read_bytes()) if file is not None and file.is_file() and not file.is_symlink() else "sha256:x"
    answer = ask_by_reference(model(), root, relative, volume_id)
    assert answer.status.error_type == expected, answer.status
    assert str(outside) not in answer.status.message and str(root) not in answer.status.message


def test_whether_an_outside_data_file_exists_is_not_told(roots):
    root, _outside = roots
    messages = []
    for name, target in (("there.mhd", "../outside/secret.raw"), ("gone.mhd", "../outside/missing.raw")):
        header = _write(root / name, _meta_header(target))
        answer = ask_by_reference(EchoEveryFormat(), root, header, vid((root / name).read_bytes()))
        messages.append(answer.status.message.replace(name, "HEADER"))
    assert messages[0] == messages[1]


@pytest.mark.parametrize("build", [
    lambda r: (_write(r / "v.mhd", _meta_header("v.raw")), (r / "v.raw").write_bytes(np.ones(120, "<i2").tobytes()))[0],
    lambda r: (_write(r / "v.nhdr", _nrrd_header("v.raw")), (r / "v.raw").write_bytes(np.ones(120, "<i2").tobytes()))[0],
    lambda r: _attached_mha(r, r),
], ids=["mhd with its data inside", "nhdr with its data inside", "mha, data attached"])
def test_declared_formats_with_their_data_inside_the_root_load(roots, build):
    root, _ = roots
    relative = build(root)
    answer = ask_by_reference(EchoEveryFormat(), root, relative, vid((root / relative).read_bytes()))
    assert answer.status.code == 0, answer.status
    assert answer.text == "q::0|(6, 5, 4)|120"


def test_what_is_hashed_is_what_is_decoded(roots, monkeypatch):
    """The file is rewritten right after the server first reads it: the id's bytes are decoded."""
    root, _ = roots
    path = root / "v.nii.gz"
    save_volume(Volume(np.ones((2, 2, 2), np.int16)), path)
    first = path.read_bytes()
    real_open = Path.open

    def open_then_rewrite(self, mode="r", *args, **kwargs):
        if self == path and "r" in mode:
            with real_open(self, "rb") as handle:
                data = handle.read()
            save_volume(Volume(np.full((3, 3, 3), 7, np.int16)), path)
            monkeypatch.setattr(Path, "open", real_open)
            return io.BytesIO(data)
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_then_rewrite)
    answer = ask_by_reference(EchoModel(), root, "v.nii.gz", vid(first))
    assert answer.status.code == 0, answer.status
    assert answer.text == "q::0|(2, 2, 2)|8"


@pytest.mark.parametrize("suffix, header", [(".mhd", _meta_header), (".nhdr", _nrrd_header)], ids=["mhd", "nhdr"])
def test_a_detached_volume_decodes_the_bytes_that_were_read(roots, monkeypatch, suffix, header):
    """Header and data file are each rewritten right after the server reads them: the header
    that was hashed and the data read with it are decoded, not what the files hold by then."""
    root, _ = roots
    path, data_file = root / f"v{suffix}", root / "v.raw"
    path.write_text(header("v.raw"))
    data_file.write_bytes(np.ones(120, "<i2").tobytes())
    first = path.read_bytes()
    rewrites = {
        path: lambda: path.write_text(header("w.raw").replace("4 5 6", "3 3 3")),
        data_file: lambda: data_file.write_bytes(np.full(120, 7, "<i2").tobytes()),
    }
    (root / "w.raw").write_bytes(np.full(27, 9, "<i2").tobytes())
    real_open = Path.open

    def open_then_rewrite(self, mode="r", *args, **kwargs):
        rewrite = rewrites.pop(Path(self).resolve(), None) if "r" in mode else None
        if rewrite is None:
            return real_open(self, mode, *args, **kwargs)
        with real_open(self, "rb") as handle:
            data = handle.read()
        rewrite()
        return io.BytesIO(data)

    monkeypatch.setattr(Path, "open", open_then_rewrite)
    answer = ask_by_reference(EchoEveryFormat(), root, path.name, vid(first))
    assert answer.status.code == 0, answer.status
    assert answer.text == "q::0|(6, 5, 4)|120"


# --- NIfTI files that lie about themselves ----------------------------------------------------
def _nifti(array: np.ndarray) -> bytes:
    """The .nii file SimpleITK writes for `array` (written to a temporary folder, read back)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v.nii"
        sitk.WriteImage(sitk.GetImageFromArray(array), str(path))
        return path.read_bytes()


def _with_datatype(data: bytes, code: int, bitpix: int) -> bytes:
    patched = bytearray(data)
    patched[70:74] = struct.pack("<hh", code, bitpix)
    return bytes(patched)


def _plain() -> bytes:
    return _nifti(np.arange(240, dtype=np.int16).reshape(6, 5, 8))


# (id, bytes, filename, expected error type)
LYING_NIFTI = [
    ("half a .nii.gz", lambda: gzip.compress(_plain())[: len(gzip.compress(_plain())) // 2], "v.nii.gz", TruncatedVolume),
    ("a .nii missing its last voxels", lambda: _plain()[:-10], "v.nii", TruncatedVolume),
    ("a .nii.gz whose stream ends early", lambda: gzip.compress(_plain()[:-10]), "v.nii.gz", TruncatedVolume),
    ("complex64 voxels", lambda: _nifti(np.ones((2, 3, 4), np.complex64)), "v.nii", UnsupportedVoxelType),
    ("complex128 voxels", lambda: _nifti(np.ones((2, 3, 4), np.complex128)), "v.nii", UnsupportedVoxelType),
    ("rgb24 voxels", lambda: _with_datatype(_nifti(np.ones((2, 3, 12), np.uint8)), 128, 24), "v.nii", UnsupportedVoxelType),
    ("float128 voxels", lambda: _with_datatype(_nifti(np.ones((2, 3, 64), np.uint8)), 1536, 128), "v.nii", UnsupportedVoxelType),
    ("corrupt gzip", lambda: _corrupt(gzip.compress(_plain())), "v.nii.gz", InvalidVolume),
    ("voxel offset inside the header", lambda: _vox_offset(_plain(), 100.0), "v.nii", InvalidVolume),
]


def _corrupt(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes(b ^ 0xFF for b in data[middle: middle + 16]) + data[middle + 16:]


def _vox_offset(data: bytes, value: float) -> bytes:
    patched = bytearray(data)
    patched[108:112] = struct.pack("<f", value)
    return bytes(patched)


@pytest.mark.parametrize("make, filename, error", [c[1:] for c in LYING_NIFTI], ids=[c[0] for c in LYING_NIFTI])
def test_lying_nifti_files_are_invalid_volumes(tmp_path, make, filename, error):
    data = make()
    with pytest.raises(error) as inline:
        load_volume_bytes(data, filename)
    assert "(inline)" in str(inline.value)
    path = tmp_path / filename
    path.write_bytes(data)
    with pytest.raises(error, match=filename):
        load_volume(path)


def _bomb_header(size_ijk=(256, 256, 512)) -> bytes:
    header = bytearray(_nifti(np.zeros((1, 1, 1), np.int16))[:352])
    header[40:56] = struct.pack("<8h", 3, *size_ijk, 1, 1, 1, 1)
    return bytes(header)


def test_a_small_gzip_declaring_a_huge_volume_is_refused_from_its_header(tmp_path, monkeypatch):
    data = gzip.compress(_bomb_header() + bytes(256 * 256 * 512 * 2), compresslevel=9)
    assert len(data) < 100_000
    path = tmp_path / "bomb.nii.gz"
    path.write_bytes(data)
    decompressed = []
    real = zlib.decompressobj

    class Counting:
        def __init__(self, *args, **kwargs):
            self._inner = real(*args, **kwargs)

        def decompress(self, data, max_length=0):
            out = self._inner.decompress(data, max_length)
            decompressed.append(len(out))
            return out

        def __getattr__(self, name):
            return getattr(self._inner, name)

    monkeypatch.setattr(nifti_decode.zlib, "decompressobj", Counting)
    with pytest.raises(VolumeTooLarge, match=r"size \(256, 256, 512\) needs about 134217728 bytes"):
        load_referenced(path, vid(data), tmp_path, max_bytes=64 << 20)
    assert sum(decompressed) <= nifti_decode.HEADER_BYTES  # the header, never the voxels
    assert load_referenced(path, vid(data), tmp_path, max_bytes=256 << 20).array.shape == (512, 256, 256)


@pytest.mark.parametrize("array", [
    np.arange(60, dtype=np.int16).reshape(3, 4, 5),
    np.linspace(-1, 1, 60, dtype=np.float32).reshape(3, 4, 5),
    np.arange(60, dtype=np.uint8).reshape(3, 4, 5),
    np.arange(60, dtype=">i4").reshape(3, 4, 5),
], ids=["int16", "float32", "uint8", "big-endian int32"])
@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_decoding_from_bytes_matches_simpleitk(tmp_path, array, suffix):
    image = sitk.GetImageFromArray(array.astype(array.dtype.newbyteorder("=")))
    image.SetSpacing((0.7, 0.8, 2.5))
    image.SetOrigin((10.0, -4.0, 3.5))
    image.SetDirection((0, 1, 0, -1, 0, 0, 0, 0, 1))
    path = tmp_path / ("v" + suffix)
    sitk.WriteImage(image, str(path))
    reference = sitk.ReadImage(str(path))
    volume = load_volume(path)
    assert volume.array.dtype == sitk.GetArrayViewFromImage(reference).dtype
    assert np.array_equal(volume.array, sitk.GetArrayFromImage(reference))
    assert volume.spacing == reference.GetSpacing() and volume.origin == reference.GetOrigin()
    assert np.array_equal(volume.direction.ravel(), np.asarray(reference.GetDirection()))


def test_scaled_voxels_match_simpleitk(tmp_path):
    data = bytearray(_plain())
    data[112:120] = struct.pack("<ff", 2.0, -1024.0)
    path = tmp_path / "scaled.nii"
    path.write_bytes(bytes(data))
    reference = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    volume = load_volume(path)
    assert volume.array.dtype == reference.dtype and np.array_equal(volume.array, reference)
