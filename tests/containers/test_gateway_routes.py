"""The gateway listens only once its namespace has no default route (CTBENCH_GATEWAY_AWAIT_NO_ROUTE):
the /proc route tables read right, and, in real network namespaces (root), a gateway that keeps a
route exits without listening while one without a route serves."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from netns import namespace

REPO = Path(__file__).resolve().parents[2]
FORWARD = REPO / "dockerfiles" / "gateway" / "forward.py"

ROUTE_V4 = """Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
eth0	00000000	010012AC	0003	0	0	0	00000000	0	0	0
eth0	000012AC	00000000	0001	0	0	0	0000FFFF	0	0	0
"""
ROUTE_V4_ON_LINK = ROUTE_V4.splitlines()[0] + "\n" + ROUTE_V4.splitlines()[2] + "\n"
ROUTE_V6 = ("00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
            "fd000000000000000000000000000001 00000400 00000001 00000000 00000003 eth0\n"
            "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
            "00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n")


@pytest.fixture(scope="module")
def forward():
    import importlib.util

    spec = importlib.util.spec_from_file_location("ctbench_gateway_forward", FORWARD)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_default_routes_are_read_from_the_proc_tables(forward):
    assert forward.default_routes(ROUTE_V4, "") == ["IPv4 via eth0"]
    assert forward.default_routes(ROUTE_V4_ON_LINK, "") == [], "a subnet route is no default route"
    assert forward.default_routes("", ROUTE_V6) == ["IPv6 via eth0"], "the kernel's entry on lo is none"
    assert forward.default_routes("", "") == []


def test_waiting_ends_when_the_route_goes_or_reports_what_is_left(forward):
    calls = []

    def read(path):  # the route goes after a few reads
        calls.append(path)
        return ROUTE_V4 if len(calls) < 6 and path.endswith("/route") else ""

    assert forward.await_no_default_route(10, read=read) == []
    assert forward.await_no_default_route(0.2, read=lambda p: ROUTE_V4 if p.endswith("/route") else "") == [
        "IPv4 via eth0"]


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root for a namespace")
def test_in_a_real_namespace_a_routed_gateway_never_listens_and_an_unrouted_one_serves():
    with namespace("gw", 252) as ns:
        env = {**os.environ, "CTBENCH_GATEWAY_AWAIT_NO_ROUTE": "0.5", "CTBENCH_GATEWAY_BIND": ns.ip}
        routed = subprocess.run(["ip", "netns", "exec", ns.name, sys.executable, str(FORWARD), "50999=127.0.0.1:1"],
                                capture_output=True, text=True, timeout=30, env=env)
        assert routed.returncode == 3 and "default route(s) still present" in routed.stderr, routed.stderr
        subprocess.run(["ip", "netns", "exec", ns.name, "ip", "route", "del", "default"], check=True, timeout=30)
        serving = subprocess.Popen(["ip", "netns", "exec", ns.name, sys.executable, str(FORWARD), "50999=127.0.0.1:1"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            assert "-> 127.0.0.1:1" in serving.stdout.readline()
            deadline = time.monotonic() + 10
            while True:  # the host reaches it over the veth pair
                try:
                    socket.create_connection((ns.ip, 50999), timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "the unrouted gateway does not listen"
                    time.sleep(0.2)
        finally:
            serving.kill()
            serving.wait(timeout=10)
