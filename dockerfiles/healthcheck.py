#!/usr/bin/env python3
"""Container health check: exit 0 when the server's grpc.health.v1 status is SERVING.

Checks the overall server status (service ""), which a ctbench server reports NOT_SERVING
until its model has loaded. Port from $CTBENCH_PORT (default 50051).
"""
import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main() -> int:
    address = f"127.0.0.1:{os.environ.get('CTBENCH_PORT', '50051')}"
    try:
        with grpc.insecure_channel(address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=3
            )
    except grpc.RpcError as exc:
        print(f"{address}: {exc.code().name}", file=sys.stderr)
        return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"{address}: {status}")
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main())
