"""A bare bidirectional gRPC stream, the yardstick for inline uploads in `bench perf harness`.

The server (its own process, like a model server) reads raw byte messages and answers once
with how many bytes it got; nothing is parsed, copied into a buffer or hashed. What the inline
path costs beyond this is the SDK's and the runner's own work.
"""
from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from pathlib import Path

import grpc

METHOD = "/ctbench.perf.BareStream/Send"


def _sink(requests, context):
    received = sum(len(message) for message in requests)
    yield str(received).encode()


def serve(port_file: Path) -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handler = grpc.method_handlers_generic_handler(
        "ctbench.perf.BareStream", {"Send": grpc.stream_stream_rpc_method_handler(_sink)}
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    tmp = port_file.with_suffix(".tmp")
    tmp.write_text(str(port))
    tmp.replace(port_file)
    server.wait_for_termination()


@contextmanager
def bare_stream_server(workdir: Path, start_timeout_s: float = 60.0) -> Iterator[str]:
    """Run the bare server in a child process; yields its address."""
    port_file = workdir / "bare-stream.port"
    process = subprocess.Popen([sys.executable, "-m", "ctbench.runners.bare_stream", str(port_file)], stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + start_timeout_s
        while not port_file.is_file():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the bare stream server did not start (exit code {process.poll()})")
            time.sleep(0.05)
        yield f"127.0.0.1:{int(port_file.read_text())}"
    finally:
        process.terminate()
        process.wait(10)


def send(address: str, total_bytes: int, message_bytes: int = 1 << 20) -> float:
    """Stream `total_bytes` in messages of `message_bytes`; seconds until the server's reply."""
    payload = bytes(message_bytes)
    count, rest = divmod(total_bytes, message_bytes)
    messages = [payload] * count + ([payload[:rest]] if rest else [])
    with grpc.insecure_channel(address) as channel:
        call = channel.stream_stream(METHOD)
        grpc.channel_ready_future(channel).result(timeout=30)
        start = time.perf_counter()
        reply = b"".join(call(iter(messages), timeout=600))
        seconds = time.perf_counter() - start
    if int(reply) != total_bytes:
        raise RuntimeError(f"the bare stream server got {int(reply)} of {total_bytes} bytes")
    return seconds


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
