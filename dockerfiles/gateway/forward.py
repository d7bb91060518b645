#!/usr/bin/env python3
"""A loopback gateway for model containers that have no route out.

Model containers sit only on an `internal` Docker network (no gateway, no NAT: nothing they
send can leave the host). Docker does not publish ports of containers that are only on an
internal network, so this forwarder sits on both the internal network and an edge network,
has its port published on 127.0.0.1 of the host, and relays TCP bytes to one model container.
It opens no outbound connection except to its fixed targets.

    forward.py 50051=chance:50051 [LISTEN=HOST:PORT ...]

Listens on 0.0.0.0 inside its container ($CTBENCH_GATEWAY_BIND overrides, e.g. for tests).
With $CTBENCH_GATEWAY_AWAIT_NO_ROUTE=SECONDS it listens only once its network namespace has no
default route left (the runner and compose delete them right after it starts), so nobody beyond
its own subnets ever gets an answer from it; still a route after SECONDS: it exits with 3.

Standard library only, so the gateway image needs nothing but python3.
"""
from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

BUFFER = 1 << 16


def parse_routes(args: list[str]) -> dict[int, tuple[str, int]]:
    """`["50051=chance:50051"]` -> `{50051: ("chance", 50051)}`; ValueError names the bad one."""
    routes: dict[int, tuple[str, int]] = {}
    for arg in args:
        try:
            listen, target = arg.split("=", 1)
            host, port = target.rsplit(":", 1)
            routes[int(listen)] = (host, int(port))
        except ValueError:
            raise ValueError(f"bad route {arg!r}: expected LISTEN_PORT=HOST:PORT") from None
    if not routes:
        raise ValueError("no routes: expected LISTEN_PORT=HOST:PORT ...")
    return routes


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(BUFFER):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


def _relay(host: str, port: int):
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            upstream_r, upstream_w = await asyncio.open_connection(host, port)
        except OSError as exc:
            print(f"gateway: cannot reach {host}:{port}: {exc}", file=sys.stderr, flush=True)
            client_w.close()
            return
        await asyncio.gather(_pipe(client_r, upstream_w), _pipe(upstream_r, client_w))

    return handle


async def serve(routes: dict[int, tuple[str, int]], bind: str = "0.0.0.0") -> None:
    servers = [
        await asyncio.start_server(_relay(host, port), bind, listen)
        for listen, (host, port) in routes.items()
    ]
    for listen, (host, port) in routes.items():
        print(f"gateway: {bind}:{listen} -> {host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


def default_routes(route_v4: str, route_v6: str) -> list[str]:
    """The default routes in the texts of /proc/net/route and /proc/net/ipv6_route (the
    unreachable entry the kernel keeps on `lo` is none)."""
    found = []
    for line in route_v4.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 7 and fields[1] == "00000000" and fields[7] == "00000000":
            found.append(f"IPv4 via {fields[0]}")
    for line in route_v6.splitlines():
        fields = line.split()
        if len(fields) == 10 and fields[0] == "0" * 32 and fields[1] == "00" and fields[9] != "lo":
            found.append(f"IPv6 via {fields[9]}")
    return found


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii") as f:
            return f.read()
    except OSError:
        return ""


def await_no_default_route(timeout_s: float, read=_read) -> list[str]:
    """Wait until this namespace has no default route; those still there after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = default_routes(read("/proc/net/route"), read("/proc/net/ipv6_route"))
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.1)


def main(argv: list[str]) -> int:
    try:
        routes = parse_routes(argv)
    except ValueError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    wait = os.environ.get("CTBENCH_GATEWAY_AWAIT_NO_ROUTE")
    if wait:
        left = await_no_default_route(float(wait))
        if left:
            print(f"gateway: default route(s) still present after {wait}s: {', '.join(left)}; "
                  "not listening", file=sys.stderr, flush=True)
            return 3
    asyncio.run(serve(routes, os.environ.get("CTBENCH_GATEWAY_BIND", "0.0.0.0")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
