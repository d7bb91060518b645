"""Network namespaces that play other machines for the isolation tests: a LAN neighbour that
routes container subnets through this host, and an outside host beyond it. Each is a namespace
joined to the host by a veth pair on its own small subnet; nothing leaves the machine. Every
namespace, veth and iptables rule made here is removed on exit, also when the test fails."""
from __future__ import annotations

import contextlib
import json
import secrets
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

COMMAND_TIMEOUT_S = 30


def sh(*args: str, check: bool = True, timeout: float = COMMAND_TIMEOUT_S) -> subprocess.CompletedProcess:
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


@dataclass
class Namespace:
    name: str
    host_ip: str  # the host's end of the veth pair
    ip: str  # the namespace's end

    def run(self, *args: str, timeout: float = COMMAND_TIMEOUT_S) -> subprocess.CompletedProcess:
        return sh("ip", "netns", "exec", self.name, *args, check=False, timeout=timeout)

    def python(self, code: str, *args: str, timeout: float = COMMAND_TIMEOUT_S) -> str:
        result = self.run(sys.executable, "-c", code, *args, timeout=timeout)
        return result.stdout + result.stderr


@contextlib.contextmanager
def namespace(role: str, octet: int, routes: tuple[str, ...] = ("default",)):
    """A namespace on 198.18.<octet>.0/24 (RFC 2544's test range), the host at .1, it at .2,
    with `routes` (destinations) via the host."""
    tag = secrets.token_hex(3)
    name, host_if, ns_if = f"ctb-{role}-{tag}", f"ctb{role[0]}{tag}h", f"ctb{role[0]}{tag}n"
    ns = Namespace(name, f"198.18.{octet}.1", f"198.18.{octet}.2")
    try:
        sh("ip", "netns", "add", name)
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        sh("ip", "link", "set", ns_if, "netns", name)
        sh("ip", "addr", "add", f"{ns.host_ip}/24", "dev", host_if)
        sh("ip", "link", "set", host_if, "up")
        for args in (("link", "set", "lo", "up"), ("addr", "add", f"{ns.ip}/24", "dev", ns_if),
                     ("link", "set", ns_if, "up")):
            sh("ip", "netns", "exec", name, "ip", *args)
        for destination in routes:
            sh("ip", "netns", "exec", name, "ip", "route", "add", destination, "via", ns.host_ip)
        yield ns
    finally:
        sh("ip", "link", "delete", host_if, check=False)
        sh("ip", "netns", "delete", name, check=False)


@contextlib.contextmanager
def iptables_rule(chain: str, *rule: str, table: str = "filter"):
    """Insert `rule` at the top of `chain`, tagged with a comment of its own; delete exactly
    that rule on exit (by its full text, so no other rule is touched)."""
    tagged = (*rule, "-m", "comment", "--comment", f"ctbench-test-{secrets.token_hex(4)}")
    sh("iptables", "-t", table, "-I", chain, "1", *tagged)
    try:
        yield
    finally:
        sh("iptables", "-t", table, "-D", chain, *tagged, check=False)


def delete_rules_naming(word: str, tables: tuple[str, ...] = ("filter", "nat")) -> None:
    """Delete every iptables rule whose text names `word` (an interface this test made)."""
    for table in tables:
        for line in sh("iptables-save", "-t", table).stdout.splitlines():
            if line.startswith("-A ") and word in line.split():
                sh("iptables", "-t", table, "-D", *shlex.split(line[3:]), check=False)


@contextlib.contextmanager
def docker_chains_bypassed():
    """What Docker's FORWARD and DOCKER chains flushed to ACCEPT amount to: every forwarded packet
    accepted before any of them is consulted."""
    with iptables_rule("FORWARD", "-j", "ACCEPT"):
        yield


# Records every TCP connection and UDP datagram that reaches it, one JSON line each.
LISTENER = r"""
import json, select, socket, sys
out, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
tcp = socket.socket(); tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.bind(("0.0.0.0", ports[0])); tcp.listen(16)
udps = []
for port in ports[1:]:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", port)); udps.append(u)
open(out, "w").close()
print("ready", flush=True)
while True:
    ready, _, _ = select.select([tcp, *udps], [], [])
    for s in ready:
        if s is tcp:
            conn, peer = tcp.accept(); conn.close(); event = {"tcp": ports[0], "from": peer[0]}
        else:
            _, peer = s.recvfrom(4096); event = {"udp": s.getsockname()[1], "from": peer[0]}
        with open(out, "a") as f:
            f.write(json.dumps(event) + "\n")
"""


class Listener:
    """TCP `tcp_port` and UDP `udp_ports` in namespace `ns`, recording what arrives."""

    def __init__(self, ns: Namespace, folder: Path, tcp_port: int, udp_ports: tuple[int, ...]):
        self.ns, self.file = ns, folder / f"{ns.name}.events"
        self.tcp_port, self.udp_ports = tcp_port, udp_ports
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", ns.name, sys.executable, "-c", LISTENER, str(self.file),
             str(tcp_port), *map(str, udp_ports)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if line.strip() != "ready":
            self.close()
            raise RuntimeError(f"listener in {ns.name} did not start: {line}{self.process.stderr.read()}")

    def events(self, settle_s: float = 1.0) -> list[dict]:
        time.sleep(settle_s)  # a datagram in flight lands before we look
        return [json.loads(line) for line in self.file.read_text().splitlines()]

    def clear(self) -> None:
        self.file.write_text("")

    def close(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


# From wherever it runs: TCP connect, a UDP datagram and a DNS query to HOST, each bounded.
# Prints one JSON object: what each attempt did ("reached"/"sent" or the error).
PROBE_OUT = r"""
import json, socket, struct, sys
host, tcp_port, udp_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
result = {}
try:
    socket.create_connection((host, tcp_port), timeout=2).close(); result["tcp"] = "reached"
except OSError as exc:
    result["tcp"] = type(exc).__name__ + ": " + str(exc)
query = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + b"\x07example\x03org\x00" + struct.pack(">HH", 1, 1)
for key, port, payload in (("udp", udp_port, b"ping"), ("dns", 53, query)):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
    try:
        s.sendto(payload, (host, port)); result[key] = "sent"
        try:
            s.recvfrom(512); result[key] = "answered"
        except OSError:
            pass
    except OSError as exc:
        result[key] = type(exc).__name__ + ": " + str(exc)
    s.close()
print(json.dumps(result))
"""

# TCP connects to each HOST:PORT argument, bounded; prints {"HOST:PORT": "reached" | error}.
PROBE_TCP = r"""
import json, socket, sys
result = {}
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close(); result[target] = "reached"
    except OSError as exc:
        result[target] = type(exc).__name__ + ": " + str(exc)
print(json.dumps(result))
"""


def last_json(output: str) -> dict:
    for line in reversed(output.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise AssertionError(f"no result in probe output: {output!r}")
