"""runners/backends/drop_routes.py in a real network namespace: it deletes the default routes
(IPv4 and IPv6) and keeps the on-link ones; without CAP_NET_ADMIN it fails, saying why.
Needs root for the namespace; no engine."""
from __future__ import annotations

import os
import shutil
import sys

import pytest
from netns import namespace, sh

from ctbench.runners.backends.docker_backend import DROP_ROUTES

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                                reason="needs root and ip for a network namespace")


def _routes(ns, family: str) -> str:
    return sh("ip", "netns", "exec", ns.name, "ip", family, "route", "show").stdout


def test_default_routes_go_and_on_link_routes_stay():
    with namespace("rt", 250) as ns:
        sh("ip", "netns", "exec", ns.name, "ip", "-6", "addr", "add", "fd00:c7::2/64", "dev",
           _ns_interface(ns), "nodad")
        sh("ip", "netns", "exec", ns.name, "ip", "-6", "route", "add", "default", "via", "fd00:c7::1")
        assert "default" in _routes(ns, "-4") and "default" in _routes(ns, "-6")
        result = ns.run(sys.executable, str(DROP_ROUTES))
        assert result.returncode == 0, result.stderr
        assert "no default route left" in result.stdout
        v4, v6 = _routes(ns, "-4"), _routes(ns, "-6")
        assert "default" not in v4 and "default" not in v6, (v4, v6)
        assert "198.18.250.0/24" in v4 and "fd00:c7::/64" in v6, "the on-link routes stay"
        again = ns.run(sys.executable, str(DROP_ROUTES))
        assert again.returncode == 0, "nothing left to delete is no error"


def test_without_net_admin_it_fails_and_says_why():
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv to drop privileges")
    with namespace("rt", 251) as ns:
        result = ns.run("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
                        sys.executable, str(DROP_ROUTES))
        assert result.returncode == 1
        assert "deleting the IPv4 default route" in result.stderr and "not permitted" in result.stderr
        assert "IPv4 default route(s) left" in result.stderr
        assert "default" in _routes(ns, "-4")


def _ns_interface(ns) -> str:
    links = sh("ip", "netns", "exec", ns.name, "ip", "-o", "link", "show").stdout
    return next(line.split(": ")[1].split("@")[0] for line in links.splitlines() if "ctbr" in line)
