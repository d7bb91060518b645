#!/usr/bin/env python3
"""Delete every default route (IPv4 and IPv6) of the network namespace it runs in, then check
that none is left. Exit 0 when the namespace has no default route, 1 (saying why) otherwise.

The docker backend runs this file's text with `python3 -c` in a one-shot container that joins a
model's or gateway's network namespace with CAP_NET_ADMIN, so that afterwards packets from that
namespace can reach only the subnets it is directly attached to: no route leads off the host,
whatever Docker's iptables chains say. Netlink by hand, standard library only, so the helper
needs nothing but python3 (no iproute2 in the images).
"""
from __future__ import annotations

import errno
import os
import socket
import struct
import sys

RTM_DELROUTE, RTM_GETROUTE, NLMSG_ERROR, NLMSG_DONE = 25, 26, 2, 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
RT_TABLE_MAIN, RT_SCOPE_NOWHERE, RTA_TABLE = 254, 255, 15
NLMSG = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol, scope, type, flags


def _request(sock: socket.socket, kind: int, flags: int, body: bytes, seq: int) -> list[tuple[int, bytes]]:
    """Send one netlink request; the (type, payload) messages of its answer, up to the ack or
    the end of the dump. An error answer raises OSError with its errno."""
    sock.send(NLMSG.pack(NLMSG.size + len(body), kind, flags, seq, 0) + body)
    messages = []
    while True:
        data = sock.recv(1 << 16)
        offset = 0
        while offset + NLMSG.size <= len(data):
            length, mtype, _flags, mseq, _pid = NLMSG.unpack_from(data, offset)
            payload = data[offset + NLMSG.size: offset + length]
            offset += (length + 3) & ~3
            if mseq != seq:
                continue
            if mtype == NLMSG_ERROR:
                (code,) = struct.unpack_from("=i", payload)
                if code:
                    raise OSError(-code, os.strerror(-code))
                return messages
            if mtype == NLMSG_DONE:
                return messages
            messages.append((mtype, payload))


def _route_table(payload: bytes) -> int:
    table = payload[4]
    offset = RTMSG.size
    while offset + 4 <= len(payload):
        length, kind = struct.unpack_from("=HH", payload, offset)
        if length < 4:
            break
        if kind == RTA_TABLE:
            (table,) = struct.unpack_from("=I", payload, offset + 4)
        offset += (length + 3) & ~3
    return table


def default_routes(sock: socket.socket, family: int, seq: int) -> int:
    """How many default routes of the main table `family` has."""
    answer = _request(sock, RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0), seq)
    return sum(1 for _kind, p in answer if p[0] == family and p[1] == 0 and _route_table(p) == RT_TABLE_MAIN)


def drop_default_routes() -> list[str]:
    """Delete the namespace's default routes; the problems left (empty: none is left)."""
    problems = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        sock.bind((0, 0))
        seq = 1
        for family, name in ((socket.AF_INET, "IPv4"), (socket.AF_INET6, "IPv6")):
            for _ in range(16):  # one per gateway; a namespace has one or two
                seq += 1
                body = RTMSG.pack(family, 0, 0, 0, RT_TABLE_MAIN, 0, RT_SCOPE_NOWHERE, 0, 0)
                try:
                    _request(sock, RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK, body, seq)
                except OSError as exc:
                    if exc.errno in (errno.ESRCH, errno.EAFNOSUPPORT, errno.ENOENT):
                        break  # none left (or no IPv6 here)
                    problems.append(f"deleting the {name} default route: {exc}")
                    break
            seq += 1
            try:
                left = default_routes(sock, family, seq)
            except OSError as exc:
                if exc.errno != errno.EAFNOSUPPORT:
                    problems.append(f"listing {name} routes: {exc}")
                continue
            if left:
                problems.append(f"{left} {name} default route(s) left")
    return problems


def main() -> int:
    problems = drop_default_routes()
    for problem in problems:
        print(f"drop_routes: {problem}", file=sys.stderr)
    if not problems:
        print("drop_routes: no default route left")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
