"""The conformance checks: each drives a running server through one promise of the protocol.

A check gets a `Context` (session.py: channel, stubs, the server's model card, which transport
to use for probe volumes) and returns (status, detail, problems). Checks never raise for a
misbehaving server: what went wrong becomes the result's problems, so one broken behaviour does
not hide the others.
"""
from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Iterator

import grpc
from grpc_health.v1 import health_pb2

from ctbench.compatibility import Wants, card_dict, negotiate
from ctbench.conformance import probe_volumes as probes
from ctbench.conformance.input_check import check_input
from ctbench.conformance.report import FAIL, PASS, SKIP, CheckResult, ConformanceReport
from ctbench.conformance.session import (
    DEFAULT_CHUNK,
    GRPC_MESSAGE_LIMIT,
    INLINE,
    REFERENCE,
    ConformanceOptions,
    Context,
    ServerWatch,
    declined,
    describe_answer,
    expect_ok,
    inline_requests,
    judge_answers,
    question,
    status_name,
    timeout_hint,
)
from ctbench.v1 import answer_volume_question_pb2 as pb


def _declined_note(n: int, total: int) -> str:
    return f"; the model declined {n}/{total} probe questions (UnsupportedQuestion): transport fine" if n else ""


# ---------------------------------------------------------------------------------------------
# The checks. Each returns (status, detail, problems).

def check_health(ctx: Context):
    deadline = time.monotonic() + ctx.options.health_timeout_s
    start, last = time.monotonic(), "no answer"
    while True:
        try:
            reply = ctx.health.Check(health_pb2.HealthCheckRequest(service=""), timeout=3)
            last = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return PASS, f"grpc.health.v1 SERVING after {time.monotonic() - start:.1f}s", []
        except grpc.RpcError as exc:
            last = exc.code().name
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                return FAIL, "", ["the server does not implement grpc.health.v1"]
        note = ctx.watch.death_note() if ctx.watch is not None else None
        if note is not None:
            return FAIL, "", [f"before SERVING, {note}"]
        if time.monotonic() > deadline:
            return FAIL, "", [f"health did not reach SERVING within {ctx.options.health_timeout_s:.0f}s (last: {last})"]
        time.sleep(0.2)


def check_describe(ctx: Context):
    card = ctx.describe()
    problems = []
    for field_name in ("name", "version", "license", "sdk_version"):
        if not getattr(card, field_name):
            problems.append(f"ModelCard.{field_name} is empty")
    if not card.HasField("input") or card.input.kind not in ("volume3d", "slices2d", "none"):
        problems.append(f"ModelCard.input.kind must be volume3d, slices2d or none (got {card.input.kind!r})")
    elif card.input.kind != "none" and not card.input.name:
        problems.append("ModelCard.input.name is empty (the model reads voxels: name how they are prepared)")
    if card.max_batch_size < 1:
        problems.append("ModelCard.max_batch_size must be at least 1")
    transports = [t for t in card.transports if t != pb.VOLUME_TRANSPORT_UNSPECIFIED]
    if not transports:
        problems.append("ModelCard.transports lists no transport (reference and/or inline)")
    if INLINE in card.transports:
        if card.max_volume_bytes == 0:
            problems.append("inline transport declared but max_volume_bytes is 0")
        if not 0 < card.max_chunk_bytes <= GRPC_MESSAGE_LIMIT - 64 * 1024:
            problems.append(f"max_chunk_bytes {card.max_chunk_bytes} must be > 0 and well under gRPC's 4 MiB message limit")
    names = [pb.VolumeTransport.Name(t).removeprefix("VOLUME_TRANSPORT_").lower() for t in transports]
    detail = (f"{card.name} {card.version} (sdk {card.sdk_version or '?'}), input {card.input.kind or '?'}"
              f"{'/' + card.input.name if card.input.name else ''}, transports {','.join(names) or 'none'}, "
              f"batch {card.max_batch_size}")
    if not card.weights:
        detail += "; weights: not stated (fine only for weight-free baselines)"
    # An empty sdk_version is a problem above; a newer or unparseable one is worth a warning.
    warnings = negotiate(card.name, card_dict(card), Wants()).notes if card.sdk_version else []
    return (FAIL if problems else PASS), detail, problems, warnings


def _transport_check(ctx: Context, transport: str):
    code = REFERENCE if transport == "reference" else INLINE
    probe = probes.small_volume(f"probe-{transport}", seed=3 if transport == "inline" else 4)
    if code not in ctx.transports:
        # Declared unsupported: it must then be refused with a typed UNIMPLEMENTED, not crash.
        if transport == "reference":
            requests = [pb.AnswerRequest(volume=pb.VolumeHeader(volume_id=probe.volume_id, path="x/probe.nii.gz"))]
        else:
            requests = inline_requests(probe.volume_id, probe.data, probe.filename, DEFAULT_CHUNK)
        qid = ctx.qid(transport)
        result = ctx.exchange(requests + [question(qid, probe.volume_id)])
        answer = result.one(qid)
        if result.error is None and answer is not None and status_name(answer.status) == "UNIMPLEMENTED":
            return PASS, f"declared unsupported; refused with UNIMPLEMENTED ({answer.status.error_type})", []
        return FAIL, "declared unsupported", [
            f"a {transport} volume should get an UNIMPLEMENTED item status; got {describe_answer(answer)}"
            + (f"; stream: {result.error_text}" if result.error else "")]
    if transport == "reference" and ctx.options.data_root is None:
        return SKIP, "declared supported; pass --data-root (the folder the server mounts) to test it", []
    qids = [ctx.qid(transport)]
    result = ctx.exchange(ctx.volume_requests(probe, transport) + [question(q, probe.volume_id) for q in qids])
    problems: list[str] = []
    expect_ok(result, qids, problems)
    return (FAIL if problems else PASS), describe_answer(result.one(qids[0])), problems


def check_reference(ctx: Context):
    return _transport_check(ctx, "reference")


def check_inline(ctx: Context):
    return _transport_check(ctx, "inline")


def check_reuse(ctx: Context, n_questions: int = 8):
    transport = ctx.probe_transport()
    if transport is None:
        return SKIP, "no transport the checker can use (inline unsupported and no --data-root)", []
    probe = probes.small_volume("probe-reuse", seed=5)
    qids = [ctx.qid("reuse") for _ in range(n_questions)]
    requests = ctx.volume_requests(probe, transport) + [question(q, probe.volume_id) for q in qids]
    result = ctx.exchange(requests)
    problems: list[str] = []
    n_declined = expect_ok(result, qids, problems)
    statuses = result.volumes.get(probe.volume_id, [])
    if len(statuses) > 1:
        problems.append(f"{len(statuses)} volume statuses for one volume (expected at most one)")
    card = ctx.card
    versions = {a.model_version for got in result.answers.values() for a in got if a.status.code == 0}
    if card is not None and versions and versions != {card.version}:
        problems.append(f"answers carry model_version {sorted(versions)}, the model card says {card.version!r}")
    detail = f"{n_questions} questions on one {transport} volume sent once" + _declined_note(n_declined, n_questions)
    return (FAIL if problems else PASS), detail, problems


def check_bad_items(ctx: Context):
    """Bad items in one stream, each must get its own typed error; a good item after them works."""
    cases: list[tuple[str, list[pb.AnswerRequest], str, str]] = []  # (what, requests, qid, expected code)
    unknown = "sha256:" + "0" * 64
    q = ctx.qid("unknown-volume")
    cases.append(("question on a volume never sent", [question(q, unknown)], q, "FAILED_PRECONDITION"))
    if INLINE in ctx.transports:
        garbage = b"this is not a NIfTI file\n" * 64
        vid = probes.ProbeVolume("garbage", garbage, "garbage.nii.gz").volume_id
        q = ctx.qid("garbage")
        cases.append(("inline bytes that are not a volume",
                      inline_requests(vid, garbage, "garbage.nii.gz", DEFAULT_CHUNK) + [question(q, vid)], q, "INVALID_ARGUMENT"))
        good = probes.small_volume("probe-mismatch", seed=6)
        wrong_id = "sha256:" + "f" * 64
        q = ctx.qid("hash-mismatch")
        cases.append(("inline bytes whose SHA-256 differs from the volume id",
                      inline_requests(wrong_id, good.data, good.filename, DEFAULT_CHUNK) + [question(q, wrong_id)], q, "INVALID_ARGUMENT"))
    if REFERENCE in ctx.transports and ctx.options.data_root is not None:
        for what, path, code in (
            ("by-reference path that does not exist", "no/such/volume.nii.gz", "NOT_FOUND"),
            ("by-reference path outside the data root", "../../../../etc/passwd.nii.gz", "PERMISSION_DENIED"),
        ):
            vid = "sha256:" + ("1" if code == "NOT_FOUND" else "2") * 64
            q = ctx.qid("bad-path")
            cases.append((what, [pb.AnswerRequest(volume=pb.VolumeHeader(volume_id=vid, path=path)), question(q, vid)], q, code))
    transport = ctx.probe_transport()
    good_requests: list[pb.AnswerRequest] = []
    good_qid = None
    if transport is not None:
        good = probes.small_volume("probe-after-bad", seed=7)
        good_qid = ctx.qid("after-bad")
        good_requests = ctx.volume_requests(good, transport) + [question(good_qid, good.volume_id)]
    result = ctx.exchange([r for _, requests, _, _ in cases for r in requests] + good_requests)
    problems = []
    if result.error is not None:
        problems.append(f"a bad item broke the stream: it ended with {result.error_text}")
    reads_voxels = ctx.card is None or ctx.card.input.kind != "none"
    for what, _, qid, expected in cases:
        answer = result.one(qid)
        if not reads_voxels and expected in ("INVALID_ARGUMENT", "NOT_FOUND") and "hash" not in what \
                and answer is not None and answer.status.code == 0:
            continue  # a server that never reads voxels need not open the file
        if answer is None:
            problems.append(f"{what}: no answer (expected {expected})")
        elif status_name(answer.status) != expected:
            problems.append(f"{what}: got {describe_answer(answer)}, expected {expected}")
        elif not answer.status.error_type or not answer.status.message:
            problems.append(f"{what}: {expected} but without error_type and message")
    if good_qid is not None:
        answer = result.one(good_qid)
        if answer is None or (answer.status.code != 0 and not declined(answer)):
            problems.append(f"a good item after the bad ones: {describe_answer(answer)}")
    detail = f"{len(cases)} bad items" + (", then a good one" if good_qid else "")
    return (FAIL if problems else PASS), detail, problems


def check_chunked(ctx: Context):
    if INLINE not in ctx.transports:
        return SKIP, "inline unsupported: by-reference volumes need no chunking", []
    probe = probes.large_volume()
    card = ctx.card
    if card is not None and card.max_volume_bytes and card.max_volume_bytes < probe.size:
        return SKIP, f"server accepts at most {card.max_volume_bytes} bytes inline (probe: {probe.size})", []
    qid = ctx.qid("large")
    requests = inline_requests(probe.volume_id, probe.data, probe.filename, ctx.chunk_bytes) + [question(qid, probe.volume_id)]
    result = ctx.exchange(requests)
    problems: list[str] = []
    n_declined = expect_ok(result, [qid], problems)
    detail = f"{probe.size / 2**20:.1f} MiB in {len(requests) - 2} chunks of <= {ctx.chunk_bytes} bytes"
    return (FAIL if problems else PASS), detail + _declined_note(n_declined, 1), problems


def check_cancel(ctx: Context, n_questions: int = 16):
    transport = ctx.probe_transport()
    if transport is None:
        return SKIP, "no transport the checker can use (inline unsupported and no --data-root)", []
    probe = probes.small_volume("probe-cancel", seed=8)
    release = threading.Event()

    def requests() -> Iterator[pb.AnswerRequest]:
        yield from ctx.volume_requests(probe, transport)
        for _ in range(n_questions):
            yield question(ctx.qid("cancel"), probe.volume_id)
        release.wait(ctx.options.timeout_s)  # keep the stream open until the client cancels

    problems = []
    call = ctx.stub.Answer(requests(), timeout=ctx.options.timeout_s)
    seen = 0
    try:
        for _ in call:
            seen += 1
            call.cancel()
            break
        for _ in call:
            pass
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.CANCELLED:
            problems.append(f"cancelled stream ended with {exc.code().name}: {exc.details()}")
    finally:
        release.set()
    if seen == 0:
        problems.append("no response arrived before cancelling")
    _status, _, health_problems = check_health(ctx)
    problems += [f"after cancelling: {p}" for p in health_problems]
    after = probes.small_volume("probe-after-cancel", seed=9)
    qid = ctx.qid("after-cancel")
    result = ctx.exchange(ctx.volume_requests(after, transport) + [question(qid, after.volume_id)])
    expect_ok(result, [qid], problems)
    return (FAIL if problems else PASS), "cancelled mid-stream; health and a new stream still work", problems


def check_orientation(ctx: Context):
    """The same anatomy stored in several orientations must get the same answer (per side).

    Consistency is all a conformant server can promise: an untrained or random-weight model
    answers gibberish, right or wrong. Naming the right lung is reported, never required; and a
    model whose answer never varies passes without showing anything, which the detail says."""
    transport = ctx.probe_transport()
    if transport is None:
        return SKIP, "no transport the checker can use (inline unsupported and no --data-root)", []
    answers: dict[str, dict[str, str]] = {}
    problems: list[str] = []
    n_declined = n_sent = 0
    for side in ("left", "right"):
        qid = f"conformance-orientation::{side}"
        for probe in probes.orientation_storages(side):
            storage = probe.name.rsplit("-", 1)[1].upper()
            n_sent += 1
            # One stream each, same question id: nothing but the storage order differs.
            result = ctx.exchange(ctx.volume_requests(probe, transport) + [question(qid, probe.volume_id)])
            answer = result.one(qid)
            if declined(answer) and result.error is None:
                n_declined += 1
                continue
            if result.error is not None or answer is None or answer.status.code != 0:
                problems.append(f"{probe.name}: {describe_answer(answer)} {result.error_text}".strip())
                continue
            answers.setdefault(side, {})[storage] = answer.text.strip().lower()
    if n_declined == n_sent:
        return SKIP, f"the model declines the probe question (UnsupportedQuestion) for all {n_sent} volumes", []
    if n_declined:
        problems.append(f"the model declined the probe for {n_declined} of {n_sent} storages of the same anatomies")
    for side, got in answers.items():
        if len(set(got.values())) > 1:
            seen = ", ".join(f"{code} -> {text!r}" for code, text in got.items())
            problems.append(f"nodule in the {side} lung, answers differ by storage order: {seen}")
    correct = sum(1 for side, got in answers.items() for a in got.values() if a == side)
    total = sum(len(got) for got in answers.values())
    codes = "/".join(probes.ORIENTATION_STORAGES)
    detail = f"same answer whether stored {codes}; {correct}/{total} name the right lung (informative only)"
    distinct = {a for got in answers.values() for a in got.values()}
    if total > 1 and len(distinct) == 1:
        detail += (f"; every answer was {next(iter(distinct))!r} whatever the lung, so consistency here does not "
                   "show that the server reads the volume's geometry")
    return (FAIL if problems else PASS), detail, problems


#: Open questions in CT-SpatialVQA's manner (every one of its questions is open), then the same
#: questions with declared options, all on one volume.
OPEN_QUESTIONS = (
    ("Which lung contains the pulmonary nodule?", ("left", "right"), "laterality"),
    ("Where is the nodule located relative to the heart?", ("left of the heart", "right of the heart"), "relative_position"),
    ("Describe the position of the largest lesion in this CT volume.", ("upper lobe", "lower lobe"), "localization"),
)


def check_questions(ctx: Context):
    """Open questions, then questions with options, on one volume: each gets OK with text, or a
    typed UnsupportedQuestion; anything else (INTERNAL, a broken stream, a dead server) fails."""
    transport = ctx.probe_transport()
    if transport is None:
        return SKIP, "no transport the checker can use (inline unsupported and no --data-root)", []
    probe = probes.small_volume("probe-questions", seed=10)
    problems: list[str] = []
    declined_by_kind = {"open": 0, "options": 0}
    empty = 0
    for kind in ("open", "options"):  # one stream each: a batch that fails on one kind spares the other
        asked = []
        requests = ctx.volume_requests(probe, transport)
        for text, options, qtype in OPEN_QUESTIONS:
            qid = ctx.qid(f"{kind}-question")
            asked.append(qid)
            requests.append(question(qid, probe.volume_id, text=text, options=options if kind == "options" else (),
                                     question_type=qtype))
        result = ctx.exchange(requests)
        label = "an open question" if kind == "open" else "a question with options"
        if result.error is not None:
            plural = "open questions" if kind == "open" else "questions with options"
            problems.append(f"the stream of {plural} ended with {result.error_text}")
        verdict = judge_answers(result, asked, label)
        problems += verdict.problems
        declined_by_kind[kind] += verdict.declined
        empty += sum(not answer.text.strip() for answer in verdict.answered)
    n = len(OPEN_QUESTIONS)
    detail = f"{n} open questions and {n} with options on one {transport} volume"
    warnings = []
    if declined_by_kind["open"]:
        warnings.append(f"the model declines {declined_by_kind['open']}/{n} open questions (UnsupportedQuestion): "
                        "CT-SpatialVQA's questions are all open, so it would score 0 on them")
    if declined_by_kind["options"]:
        detail += f"; declined {declined_by_kind['options']}/{n} with options"
    if empty:  # fine for random weights, worth a look for a trained model
        warnings.append(f"{empty} of {2 * n} answers were empty text")
    return (FAIL if problems else PASS), detail, problems, warnings


# name -> (title, function). Order matters: health and describe first (they fill the context).
CHECKS: dict[str, tuple[str, Callable]] = {
    "health": ("health goes SERVING", check_health),
    "describe": ("Describe returns a complete model card", check_describe),
    "input": ("what the model is fed matches the card's InputSpec (InspectInput)", check_input),
    "reference": ("a by-reference volume is answered (or declared unsupported)", check_reference),
    "inline": ("an inline volume is answered (or declared unsupported)", check_inline),
    "questions": ("open questions and questions with options are answered", check_questions),
    "reuse": ("a volume sent once serves many questions", check_reuse),
    "bad-items": ("bad items get typed errors without breaking the stream", check_bad_items),
    "chunked": ("a volume over 4 MiB arrives in chunks and is answered", check_chunked),
    "cancel": ("cancelling a stream leaves the server healthy", check_cancel),
    "orientation": ("the orientation probe answers consistently", check_orientation),
}


def run_conformance(address: str, options: ConformanceOptions | None = None,
                    progress: Callable[[CheckResult], None] | None = None,
                    watch: ServerWatch | None = None) -> ConformanceReport:
    """Run the checks against the server at `address` (host:port) and report. With `watch` (the
    checker started the server), a server that dies is reported once, with its exit code and the
    last lines of its log, and the checks after it are skipped."""
    options = options or ConformanceOptions()
    unknown = [n for n in options.only if n not in CHECKS]
    if unknown:
        from ctbench.errors import UnknownName

        raise UnknownName(f"Unknown conformance check {unknown[0]!r}. Available: {', '.join(CHECKS)}")
    report = ConformanceReport(address)
    ctx = Context(address, options)
    ctx.watch = watch
    healthy, died_in = True, None
    try:
        for name, (title, func) in CHECKS.items():
            if options.only and name not in options.only and name not in ("health", "describe"):
                continue
            start = time.monotonic()
            ctx.slowest = []
            warnings: list[str] = []
            try:
                if died_in is not None:
                    status, detail, problems = SKIP, f"the server died during the {died_in} check", []
                elif not healthy:
                    status, detail, problems = SKIP, "the server never turned healthy", []
                elif name not in ("health", "describe") and ctx.card is None:
                    status, detail, problems = SKIP, "needs Describe to work", []
                else:
                    status, detail, problems, *more = func(ctx)
                    warnings = list(more[0]) if more else []
            except grpc.RpcError as exc:
                status, detail, problems = FAIL, "", [f"RPC failed: {exc.code().name}: {exc.details()}"
                                                      + timeout_hint(exc, options.timeout_s)]
            except Exception as exc:
                status, detail, problems = FAIL, "", [f"checker error: {exc!r}", traceback.format_exc(limit=3)]
            if died_in is None and healthy and status == FAIL:
                note = _death_note(ctx)
                if note is not None:
                    died_in = name
                    problems = [note] + problems[:3] + ([f"... {len(problems) - 3} more"] if len(problems) > 3 else [])
            slowest = max(ctx.slowest, default=(0.0, ""))
            if slowest[0] > options.slow_s:
                scale = ("a full benchmark run asks thousands of questions" if slowest[1].startswith("answer")
                         else "a full benchmark run prepares each of its volumes this way")
                warnings.append(f"slow: the {slowest[1]} took {slowest[0]:.1f}s (more than {options.slow_s:g}s); {scale}")
            result = CheckResult(name, title, status, detail, problems, round(time.monotonic() - start, 3),
                                 round(slowest[0], 3), warnings)
            report.results.append(result)
            if name == "health" and status == FAIL:
                healthy = False
            if progress is not None:
                progress(result)
        if ctx.card is not None:
            report.model = {"name": ctx.card.name, "version": ctx.card.version, "sdk_version": ctx.card.sdk_version}
    finally:
        ctx.close()
    return report


def _unavailable(ctx: Context, timeout_s: float) -> grpc.RpcError | None:
    """The error of a health call that finds no server (UNAVAILABLE); None when anything answers."""
    try:
        ctx.health.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout_s)
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.UNAVAILABLE:
            return exc
    return None


def _death_note(ctx: Context) -> str | None:
    """After a failed check: has the server died? With a watch, its exit code and log tail;
    without one, a health call that cannot connect says it is gone."""
    if ctx.watch is not None:
        for _ in range(20):  # the process may take a moment to be reaped after its socket closed
            note = ctx.watch.death_note()
            if note is not None:
                return note
            if _unavailable(ctx, 2) is None:
                return None
            time.sleep(0.1)
        return None
    gone = _unavailable(ctx, 3)
    if gone is None:
        return None
    return (f"the server at {ctx.address} stopped answering during this check (health: UNAVAILABLE, "
            f"{gone.details()}): it has probably died; its log says why (bench conformance --serve or --image "
            "reports its exit code and log)")
