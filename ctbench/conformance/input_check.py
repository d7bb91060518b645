"""The `input` check: what the model is fed, without weights.

The server is asked (`InspectInput`) for the array it would hand its model for the orientation
probe (`ctbench.preprocess.orientation_probe`: three markers of known HU on the patient's left,
anterior and superior, at different distances) stored in several orientations, one of them a
permutation. Each array is checked against the card's declared InputSpec alone: its shape
(axis order, target shape, slice count), where each marker landed (orientation, axis order,
spacing: a consistent mirror or transpose puts a marker where none is expected) and the value
each marker got (the declared intensity window, where the declaration can be read).
"""
from __future__ import annotations

import dataclasses
import re
import time

import grpc
import numpy as np

from ctbench.compatibility import Wants, card_dict, negotiate
from ctbench.conformance import probe_volumes as probes
from ctbench.conformance.report import FAIL, PASS, SKIP
from ctbench.conformance.session import Context, timeout_hint
from ctbench.preprocess.input_spec import InputSpec
from ctbench.preprocess.orientation import reorient
from ctbench.preprocess.orientation_probe import (
    BACKGROUND_HU,
    MARKERS,
    check_markers,
    expected_marker_positions,
    make_probe_volume,
)
from ctbench.v1 import answer_volume_question_pb2 as pb

#: Probe storages: as declared by most headers, every axis flipped, and two permutations.
INPUT_STORAGES = ("LPS", "RAS", "ASL", "IRP")
SAMPLE_BYTES = 12 << 20  # the checker's channel takes replies up to 16 MiB
_NUMBER = r"(-?\d+(?:\.\d+)?)"
_CLIP = re.compile(rf"clip\[\s*{_NUMBER}\s*,\s*{_NUMBER}\s*\].*->\s*\[\s*{_NUMBER}\s*,\s*{_NUMBER}\s*\]")
PROBE_HU_RANGE = (BACKGROUND_HU, max(m.hu for m in MARKERS))


def declared_spec(card: pb.ModelCard) -> InputSpec:
    """The card's InputSpec as the preprocessing library's type (declarations only, no pipeline).
    Raises ValueError naming the field when a declaration is not valid."""
    return InputSpec.from_proto(card.input)


def _as_stored_spec(spec: InputSpec, probe) -> InputSpec:
    """A spec without a declared geometry (the array as stored, or only reoriented) as the
    identity resize the marker oracle understands."""
    oriented = reorient(probe, spec.orientation) if spec.orientation else probe
    by_letter = dict(zip("DHW", oriented.array.shape))
    shape = tuple(by_letter[letter] for letter in spec.axis_order)
    return dataclasses.replace(spec, target_shape=shape, details={**spec.details, "geometry": "resize"})


def decode(message: pb.ModelInput) -> np.ndarray:
    """The sampled array back at the full shape (nearest neighbour along strided axes)."""
    dtype = np.dtype(message.dtype).newbyteorder("<")
    sample = np.frombuffer(message.data, dtype=dtype).reshape(tuple(message.sampled_shape)).astype(dtype.newbyteorder("="))
    for axis, (stride, n) in enumerate(zip(message.stride, message.shape)):
        if stride > 1:  # each index reads its nearest sample: off by at most stride / 2
            nearest = np.clip(np.rint(np.arange(n) / stride).astype(int), 0, sample.shape[axis] - 1)
            sample = np.take(sample, nearest, axis=axis)
    return sample


def expected_value(spec: InputSpec, hu: float, channel: int | None) -> float | None:
    """What a voxel of `hu` must read in the output, from the declaration (None: not stated
    in a form this check reads)."""
    if spec.kind == "slices2d" and spec.windows:
        lo, hi = spec.windows[channel or 0] if len(spec.windows) > 1 else spec.windows[0]
        return float(np.clip((hu - lo) / (hi - lo), 0.0, 1.0) * 255.0)
    text = spec.intensity.strip().lower()
    match = _CLIP.search(text)
    if match:
        lo, hi, a, b = (float(g) for g in match.groups())
        return a + (b - a) * float(np.clip((hu - lo) / (hi - lo), 0.0, 1.0))
    if text.startswith("min-max"):
        match = re.search(rf"->\s*\[\s*{_NUMBER}\s*,\s*{_NUMBER}\s*\]", text)
        a, b = (float(g) for g in match.groups()) if match else (0.0, 1.0)
        lo, hi = PROBE_HU_RANGE
        return a + (b - a) * (hu - lo) / (hi - lo)
    if text.startswith("raw hu"):
        return hu
    return None


def intensity_problems(spec: InputSpec, output: np.ndarray, positions: dict) -> tuple[list[str], bool]:
    """Each visible marker's value (and the air's) against the declared intensity mapping.
    Returns (problems, whether the declaration could be read)."""
    points = [(m.name, m.hu, positions[m.name]) for m in MARKERS if positions.get(m.name) is not None]
    # Air: the probe's centre (volumes) or the first slice's centre (slices): no marker lies there.
    centre = tuple(n // 2 for n in output.shape[:3])
    if spec.kind == "slices2d":
        centre = (0,) + centre[1:]
    points.append(("air", BACKGROUND_HU, centre))
    channels = [None] if output.ndim == 3 else list(range(output.shape[3]))
    if expected_value(spec, 0.0, channels[0]) is None:
        return [], False
    problems = []
    for name, hu, position in points:
        index = tuple(round(p) for p in position)
        for channel in channels:
            want = expected_value(spec, hu, channel)
            got = float(output[index] if channel is None else output[index + (channel,)])
            scale = 255.0 if spec.kind == "slices2d" else max(1.0, abs(expected_value(spec, PROBE_HU_RANGE[1], channel)
                                                                          - expected_value(spec, PROBE_HU_RANGE[0], channel)))
            if abs(got - want) > 0.02 * scale + 1e-6:
                where = "" if channel is None else f" channel {channel}"
                problems.append(f"{name} ({hu:g} HU){where} reads {got:.4g} at {index}, the declared intensity "
                                f"{spec.intensity!r}{' windows ' + str(list(spec.windows)) if spec.windows else ''} "
                                f"gives {want:.4g}")
    return problems, True


def _named_transform(spec: InputSpec, probe, output: np.ndarray) -> str:
    """If the output is the expected one mirrored along some axes (or two equal-length axes
    swapped), say which: the usual ways an array is read in the wrong convention."""
    axes = range(3)
    candidates = [((a,), None) for a in axes] + [((a, b), None) for a in axes for b in axes if a < b]
    candidates += [((), (a, b)) for a in axes for b in axes if a < b and output.shape[a] == output.shape[b]]
    for flips, swap in candidates:
        candidate = np.flip(output, axis=flips) if flips else output
        if swap is not None:
            candidate = np.swapaxes(candidate, *swap)
        if not check_markers(spec, probe, candidate):
            letters = spec.axis_order
            if swap is not None:
                return f"it is the declared input with axes {letters[swap[0]]} and {letters[swap[1]]} swapped"
            return "it is the declared input mirrored along " + " and ".join(f"axis {a} ({letters[a]})" for a in flips)
    return ""


def check_input(ctx: Context):
    card = ctx.card
    if card.input.kind == "none":
        return PASS, "the model declares it reads no voxels (input kind none): nothing to inspect", []
    refused = negotiate(card.name, card_dict(card), Wants(inspect_input=True)).refused.get("inspect_input")
    if refused is not None:
        return SKIP, refused, []
    transport = ctx.probe_transport()
    if transport is None:
        return SKIP, "no transport the checker can use (inline unsupported and no --data-root)", []
    try:
        spec = declared_spec(card)
    except ValueError as exc:
        return FAIL, "", [f"the card's InputSpec is not valid: {exc}"]
    problems: list[str] = []
    checked, unreadable_intensity, shapes = [], False, set()
    for code in INPUT_STORAGES:
        volume = make_probe_volume(code)
        stem = f"input-probe-{code.lower()}"
        probe = probes.ProbeVolume(stem, probes._nifti_bytes(volume.array, volume.spacing, volume.origin,
                                                              volume.direction, f"{stem}.nii.gz"), f"{stem}.nii.gz")
        if transport == "reference":
            header = pb.VolumeHeader(volume_id=probe.volume_id, path=ctx.stage(probe))
            request = pb.InspectInputRequest(volume=header, max_bytes=SAMPLE_BYTES)
        else:
            header = pb.VolumeHeader(volume_id=probe.volume_id,
                                     inline=pb.InlineVolume(total_bytes=probe.size, filename=probe.filename))
            request = pb.InspectInputRequest(volume=header, data=probe.data, max_bytes=SAMPLE_BYTES)
        start = time.monotonic()
        try:
            reply = ctx.stub.InspectInput(request, timeout=ctx.options.timeout_s)
        except grpc.RpcError as exc:
            problems.append(f"stored {code}: InspectInput failed with {exc.code().name}: {exc.details()}"
                            + timeout_hint(exc, ctx.options.timeout_s))
            continue
        finally:
            ctx.timed(time.monotonic() - start, f"InspectInput (load + preprocess) of the probe stored {code}")
        try:
            output = decode(reply)
        except (ValueError, TypeError) as exc:
            problems.append(f"stored {code}: the ModelInput reply cannot be read as {reply.dtype} "
                            f"{list(reply.sampled_shape)}: {exc}")
            continue
        shapes.add((tuple(reply.shape), reply.dtype))
        wrong_shape = _shape_problems(spec, output, volume)
        if wrong_shape:
            problems += [f"stored {code}: {p}" for p in wrong_shape]
            continue
        effective = spec if spec.geometry != "none" else _as_stored_spec(spec, volume)
        positions = expected_marker_positions(effective, volume)
        if all(p is None for p in positions.values()):
            continue
        found = check_markers(effective, volume, output)
        if found:
            named = _named_transform(effective, volume, output)
            problems.append(f"stored {code}: the markers are not where the card's InputSpec puts them"
                            + (f": {named}" if named else "") + "; " + "; ".join(found))
            continue
        found, readable = intensity_problems(effective, output, positions)
        unreadable_intensity |= not readable
        problems += [f"stored {code}: {p}" for p in found]
        checked.append(code)
    if not checked and not problems:
        return SKIP, ("the declared geometry shows none of the probe's markers (too few slices?): serve with more "
                      "slices to check what the model is fed"), []
    shape_text = ", ".join(f"{list(s)} {d}" for s, d in sorted(shapes))
    detail = (f"probe stored {'/'.join(INPUT_STORAGES)} via {transport}: input {shape_text}; markers at the declared "
              f"positions (orientation {spec.orientation or 'as stored'}, axis order {spec.axis_order}) for "
              f"{'/'.join(checked) or 'none'}")
    if spec.target_spacing_mm and checked:
        detail += f"; spacing {list(spec.target_spacing_mm)} mm (the markers sit 20/36/52 mm from the centre)"
    if checked:
        detail += ("; intensity: rank order only (the declared intensity "
                   f"{spec.intensity!r} is not in a form the check reads)" if unreadable_intensity
                   else "; marker HU values match the declared intensity")
    return (FAIL if problems else PASS), detail, problems


def _shape_problems(spec: InputSpec, output: np.ndarray, volume) -> list[str]:
    shape = output.shape
    if spec.kind == "slices2d":
        if output.ndim != 4 or shape[3] not in (1, 3):
            return [f"a slice model's input must be (N, rows, cols, 3); got shape {list(shape)}"]
        if output.dtype != np.uint8:
            return [f"a slice model's input must be uint8 (0..255); got {output.dtype}"]
        oriented = reorient(volume, spec.orientation) if spec.orientation else volume
        available = oriented.array.shape[0]  # slices along D of the (oriented) probe
        wanted = 1 if spec.geometry == "middle_slice" else min(spec.num_slices or available, available)
        if shape[0] != wanted:
            return [f"{shape[0]} slices, but num_slices {spec.num_slices} of the probe's {available} slices "
                    f"({spec.geometry}) gives {wanted}"]
        if spec.target_shape and tuple(shape[1:3]) != tuple(spec.target_shape[1:]):
            return [f"slices of {list(shape[1:3])}, the card declares {list(spec.target_shape[1:])} (target_shape "
                    f"{list(spec.target_shape)})"]
        return []
    if output.ndim != 3:
        return [f"a volume3d input must have three spatial axes ({spec.axis_order}); got shape {list(shape)}"]
    if spec.target_shape and tuple(shape[:len(spec.target_shape)]) != spec.target_shape:
        return [f"shape {list(shape)}, the card declares target_shape {list(spec.target_shape)} in axis order "
                f"{spec.axis_order}"]
    if spec.geometry == "none":
        expected = _as_stored_spec(spec, volume).target_shape
        if tuple(shape[:3]) != expected:
            return [f"shape {list(shape)}, but the probe {'reoriented to ' + spec.orientation if spec.orientation else 'as stored'}"
                    f" in axis order {spec.axis_order} is {list(expected)}: axes permuted or resized"]
    return []
