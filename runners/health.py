"""Waiting for a server's grpc.health.v1 status to reach SERVING, with a bound."""
from __future__ import annotations

import time
from collections.abc import Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ctbench.errors import ServerStartError


def wait_until_serving(
    address: str,
    timeout_s: float,
    name: str = "",
    alive: Callable[[], bool] = lambda: True,
    logs: Callable[[], str] = lambda: "",
) -> None:
    """Poll health until SERVING. Raises `ServerStartError` (with the server's last log lines)
    when the server dies or the bound passes."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    from ctbench.runners.channels import open_channel

    with open_channel(address) as channel:  # TLS where the address has a CA registered
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            if not alive():
                raise ServerStartError(f"server {name!r} died before turning healthy:\n{logs()}")
            try:
                response = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2.0)
                if response.status == health_pb2.HealthCheckResponse.SERVING:
                    return
                last = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
            except grpc.RpcError as exc:
                last = exc.code().name
            if time.monotonic() > deadline:
                raise ServerStartError(
                    f"server {name!r} at {address} did not turn healthy within {timeout_s:.0f}s "
                    f"(last health status: {last}):\n{logs()}"
                )
            time.sleep(0.1)
