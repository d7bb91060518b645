"""What a runner and a server can do together: capabilities, the card that declares them, the
ctbench version that introduced them, and what asks for them.

A server says what it supports in its model card (`ModelCard`, from Describe) and which ctbench
SDK built it (`sdk_version`). Within protocol v1 fields and calls are only added, so a capability
is used when the card declares it; an older server simply leaves the field out. `negotiate`
compares what a run or a conformance check asks for with the card, and returns the capabilities
both sides support and, before anything is streamed, the notes and refusals to show: a control
whose volumes travel inline on a server without inline transport, `--transport reference` on a
server that cannot read references, the input check on a server without `InspectInput`, a server
newer than this runner (what it adds beyond this runner's version is not used), an empty or
unparseable `sdk_version`.

The card is the dict form of `ModelCard` (`MessageToDict(..., preserving_proto_field_name=True)`:
fields at their default value are absent).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import ctbench

INLINE = "VOLUME_TRANSPORT_INLINE"
REFERENCE = "VOLUME_TRANSPORT_REFERENCE"


@dataclass(frozen=True)
class Capability:
    name: str
    declared: Callable[[dict], bool]  # the card says the server has it
    field: str  # the card field that declares it, for messages
    since: str  # the ctbench release whose protocol first has it
    needed_by: str  # what asks for it


def _transports(card: dict) -> list:
    return list(card.get("transports") or [])


CAPABILITIES: tuple[Capability, ...] = (
    Capability("reference", lambda card: REFERENCE in _transports(card), "transports: VOLUME_TRANSPORT_REFERENCE", "0.1.0",
               "volumes sent as paths under the data root (`--transport reference`; `auto` when the server mounts it)"),
    Capability("inline", lambda card: INLINE in _transports(card), "transports: VOLUME_TRANSPORT_INLINE", "0.1.0",
               "volumes sent as bytes (`--transport inline`, volumes outside the data root, the mirror-lr and blank controls)"),
    Capability("inline_budget", lambda card: int(card.get("max_inline_bytes") or 0) > 0, "max_inline_bytes",
               "0.2.0", "nothing refuses without it: it records how many inline bytes the server holds at once"),
    Capability("inspect_input", lambda card: bool(card.get("inspect_input")), "inspect_input",
               "0.2.0", "the `input` check of `bench conformance` (the InspectInput call)"),
    Capability("inline_hash_follows", lambda card: bool(card.get("inline_hash_follows")), "inline_hash_follows",
               "0.2.0", "nothing refuses without it: inline volumes are read, hashed and sent in one pass "
               "(the hash after the bytes); without it the runner hashes each file before its first chunk"),
)
BY_NAME = {capability.name: capability for capability in CAPABILITIES}


def card_dict(card) -> dict:
    """The dict form of a `ModelCard` message: what `negotiate` reads and run.json records (the
    runner's one conversion of a Describe reply; `runners/client.py: describe` returns it)."""
    from google.protobuf.json_format import MessageToDict

    return MessageToDict(card, preserving_proto_field_name=True)


_VERSION = re.compile(r"v?(\d+(?:\.\d+)*)(?:[-_.]?(?:a|b|c|rc|alpha|beta|pre|preview|dev|post)\.?\d*)*(?:\+[a-z0-9.]+)?",
                      re.IGNORECASE)  # PEP 440's shapes


def parse_version(text: str) -> tuple[int, ...] | None:
    """The release numbers of a version ("0.2.0rc1" -> (0, 2, 0)); None when there are none."""
    match = _VERSION.fullmatch((text or "").strip())
    if match is None:
        return None
    return tuple(int(part) for part in match.group(1).split("."))


def _newer(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    width = max(len(a), len(b))
    return a + (0,) * (width - len(a)) > b + (0,) * (width - len(b))


@dataclass(frozen=True)
class Wants:
    """What is asked of one server.

    transport: "auto" | "inline" | "reference" (`bench run --transport`).
    reference_reachable: the server can read the run's data root (a started server mounts it;
    an `--endpoints` server does not).
    inline_controls: controls whose derived volumes travel inline.
    inspect_input: the conformance input check."""

    transport: str = "auto"
    reference_reachable: bool = True
    inline_controls: tuple[str, ...] = ()
    inspect_input: bool = False


@dataclass
class Negotiation:
    server: str
    sdk_version: str
    runner_version: str
    usable: list[str]  # capability names, in table order
    transport: str | None = None  # how the real volumes travel: "reference" | "inline" | None (refused)
    notes: list[str] = field(default_factory=list)  # said once, nothing refused
    refused: dict[str, str] = field(default_factory=dict)  # "volumes" | "control NAME" | "inspect_input" -> why

    def to_json(self) -> dict:
        return {"sdk_version": self.sdk_version, "runner_version": self.runner_version, "usable": self.usable,
                "transport": self.transport, "notes": self.notes, "refused": self.refused}


def negotiate(server: str, card: dict, wants: Wants, runner_version: str = ctbench.__version__) -> Negotiation:
    """The capabilities both sides support and, for each thing asked that the server cannot do,
    a message naming the server, its sdk_version and what to do."""
    sdk = str(card.get("sdk_version") or "")
    usable = [c.name for c in CAPABILITIES if c.declared(card)]
    result = Negotiation(server, sdk, runner_version, usable)
    who = f"server {server!r} (sdk_version {sdk or 'empty'})"
    server_version, runner = parse_version(sdk), parse_version(runner_version)
    if server_version is None:
        result.notes.append(f"{who}: its sdk_version is {'empty' if not sdk else 'not a version'}, so the runner goes by "
                            "its card alone; a server built on the ctbench SDK fills it in (rebuild the image on it)")
    elif runner is not None and _newer(server_version, runner):
        result.notes.append(f"{who} is newer than this runner (ctbench {runner_version}): what it offers beyond "
                            f"{runner_version} is not used; upgrade ctbench on the runner to use it")

    def missing(name: str, asked: str) -> str:
        capability = BY_NAME[name]
        if server_version is not None and _newer(parse_version(capability.since), server_version):
            why = f"its SDK predates ctbench {capability.since}, which added it; rebuild the image on ctbench>={capability.since}"
        else:
            why = f"its card does not declare it ({capability.field}); declare it in the model's card if the server supports it"
        return f"{who} cannot {asked}: {why}"

    result.transport, refusal = _transport(wants, usable, who, missing)
    if refusal:
        result.refused["volumes"] = refusal
    for control in wants.inline_controls:
        if "inline" not in usable:
            result.refused[f"control {control}"] = missing(
                "inline", f"take control {control}'s derived volumes, which travel inline")
    if wants.inspect_input and "inspect_input" not in usable:
        result.refused["inspect_input"] = missing("inspect_input", "answer InspectInput, so what the model is fed is not checked")
    return result


def _transport(wants: Wants, usable: list[str], who: str, missing) -> tuple[str | None, str]:
    """How the real volumes travel, or None and why not."""
    reference = "reference" in usable and wants.reference_reachable
    inline = "inline" in usable
    if wants.transport == "inline":
        if inline:
            return "inline", ""
        return None, missing("inline", "take volumes inline (--transport inline)") + "; or run with --transport auto"
    if wants.transport == "reference":
        if reference:
            return "reference", ""
        if "reference" in usable:
            return None, (f"{who} cannot read volumes by reference here: it does not mount the run's data root "
                          "(an --endpoints server); run with --transport inline or auto")
        return None, (missing("reference", "take volumes by reference (--transport reference)")
                      + " (an SDK server started without --data-root leaves it out); or run with --transport auto")
    if reference or inline:
        return ("reference" if reference else "inline"), ""
    why = "references need the data root mounted" if "reference" in usable else "neither transport declared"
    return None, missing("inline", f"take volumes: no transport both sides can use ({why})")
