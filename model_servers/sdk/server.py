"""Runs a `Model` as a gRPC server: AnswerVolumeQuestion + grpc.health.v1 + reflection.

The server wires a `Pipeline` (pipeline.py, which owns stage order, timings and readiness) to
gRPC: the servicer, grpc.health.v1 and reflection. Health follows the pipeline's `Readiness`:
NOT_SERVING until `Model.load()` succeeds and the card checks (load runs in the background so
probes are answered while weights load). SIGTERM/SIGINT enter graceful shutdown: readiness
turns `draining` (health NOT_SERVING), in-flight streams get `grace` seconds, then the pipeline
closes (the batcher stops).
"""
from __future__ import annotations

import logging
import signal
import threading
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from ctbench.errors import PortInUse
from ctbench.exit_with_parent import ParentWatch
from ctbench.model_servers.sdk import auth
from ctbench.model_servers.sdk.malloc_arenas import DEFAULT_ARENAS, cap_malloc_arenas
from ctbench.model_servers.sdk.model import Model
from ctbench.model_servers.sdk.model_core import ServerLimits
from ctbench.model_servers.sdk.pipeline import Pipeline, Readiness
from ctbench.model_servers.sdk.servicer import AnswerVolumeQuestionServicer
from ctbench.v1 import answer_volume_question_pb2 as pb
from ctbench.v1 import answer_volume_question_pb2_grpc as pb_grpc

log = logging.getLogger("ctbench.server")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["AnswerVolumeQuestion"].full_name
SPARE_THREADS = 8  # threads no Answer stream can take


@dataclass
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 50051
    data_root: Path | None = None
    cache_bytes: int = 4 << 30
    max_volume_bytes: int = 2 << 30  # largest inline volume (file bytes)
    max_decoded_bytes: int = 4 << 30  # largest decoded volume, checked from its header
    max_inline_bytes: int = 4 << 30  # inline bytes all streams together hold at once
    preprocess_workers: int = 2
    max_streams: int = 64  # Answer streams served at once (each holds one thread while open)
    grace_s: float = 5.0
    tls_cert: Path | None = None  # PEM certificate chain and key: the port speaks TLS (sdk/auth.py)
    tls_key: Path | None = None
    malloc_arenas: int = DEFAULT_ARENAS  # glibc malloc arenas of the process (malloc_arenas.py); 0: glibc's default
    trim_heap_after_upload: bool = True  # freed heap pages go back once an inline upload is in (malloc_arenas.py)
    grow_receive_windows: bool = False  # gRPC's BDP probing: receive windows grow with the link (unbounded buffering)


class ModelServer:
    def __init__(self, model: Model, options: ServerOptions):
        self.model = model
        self.options = options
        cap_malloc_arenas(options.malloc_arenas)  # before any of the server's threads run
        # Every open Answer stream holds a thread; the servicer refuses streams beyond max_streams,
        # so the threads past them always serve health, Describe, reflection and refusals.
        workers = options.max_streams + SPARE_THREADS
        self._pool = futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ctbench-grpc")
        self._preprocess = futures.ThreadPoolExecutor(max_workers=options.preprocess_workers, thread_name_prefix="ctbench-prep")
        limits = ServerLimits(
            data_root=options.data_root,
            max_volume_bytes=options.max_volume_bytes,
            max_decoded_bytes=options.max_decoded_bytes,
            max_inline_bytes=options.max_inline_bytes,
            max_streams=options.max_streams,
            trim_heap_after_upload=options.trim_heap_after_upload,
        )
        self.pipeline = Pipeline(model, limits, options.cache_bytes, self._preprocess)
        self.health = health.HealthServicer(experimental_non_blocking=True)
        # so_reuseport off: a second server on a taken port must fail, not silently share it.
        # BDP probing off (unless asked): HTTP/2 receive windows stay at gRPC's default instead of
        # growing with the measured bandwidth-delay product, so the bytes gRPC buffers for a
        # stream whose reader lags stay bounded (BENCHMARKS.md: the server's peak RSS was noisy,
        # 140-250 MiB, with them growing, 125-130 MiB without).
        self.server = grpc.server(self._pool, interceptors=auth.interceptors_from_env(), maximum_concurrent_rpcs=workers * 2, options=[("grpc.so_reuseport", 0), ("grpc.http2.bdp_probe", int(options.grow_receive_windows))])
        pb_grpc.add_AnswerVolumeQuestionServicer_to_server(AnswerVolumeQuestionServicer(self.pipeline), self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
            self.server,
        )
        self.pipeline.readiness.subscribe(self._follow_readiness)
        self.port = 0
        self._stopped = threading.Event()

    @property
    def core(self):
        """The pipeline (its name before pipeline.py)."""
        return self.pipeline

    @property
    def loaded(self) -> threading.Event:
        """Set once the model serves (the pipeline's `Readiness.loaded`)."""
        return self.pipeline.readiness.loaded

    def _follow_readiness(self, state: str) -> None:
        serving = state == Readiness.SERVING
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for service in ("", SERVICE_NAME):
            self.health.set(service, status)

    def start(self) -> int:
        """Bind, start serving, and begin loading the model in the background. Returns the port."""
        address = f"{self.options.host}:{self.options.port}"
        try:
            if self.options.tls_cert is not None:
                from ctbench.model_servers.sdk.auth import server_credentials

                self.port = self.server.add_secure_port(address, server_credentials(self.options.tls_cert, self.options.tls_key))
            else:
                self.port = self.server.add_insecure_port(address)
        except RuntimeError as exc:
            raise PortInUse(f"cannot listen on {address}: the port is in use or not bindable ({exc})") from None
        if self.port == 0:
            raise PortInUse(f"cannot listen on {address}: the port is in use or not bindable")
        self.server.start()
        threading.Thread(target=self.pipeline.load, name="ctbench-load", daemon=True).start()
        return self.port

    def stop(self, grace: float | None = None) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.pipeline.begin_shutdown()
        self.health.enter_graceful_shutdown()
        self.server.stop(self.options.grace_s if grace is None else grace).wait()
        self.pipeline.close()
        self._preprocess.shutdown(wait=False, cancel_futures=True)

    def wait(self) -> None:
        self.server.wait_for_termination()

    def install_signal_handlers(self) -> None:
        def handler(signum, frame):
            log.info("signal %s: shutting down gracefully", signum)
            threading.Thread(target=self.stop, daemon=True).start()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)


def serve(model: Model, options: ServerOptions, port_file: Path | None = None, exit_with_parent: bool | ParentWatch = False) -> None:
    """Serve until a signal arrives. Writes the bound port to `port_file` once listening.

    With `exit_with_parent` (True, or a `ParentWatch` armed earlier, before heavy imports), the
    server also stops when its parent process dies, so a runner killed with SIGKILL leaves no
    orphaned servers behind."""
    watch = ParentWatch.arm() if exit_with_parent is True else exit_with_parent or None
    server = ModelServer(model, options)
    port = server.start()
    server.install_signal_handlers()
    if watch is not None:
        def parent_died() -> None:
            log.warning("parent process %d is gone: shutting down", watch.parent)
            server.stop(grace=1.0)

        watch.watch(parent_died, server._stopped)
    log.info("serving %s on %s:%d (data root: %s)", model.name, options.host, port, options.data_root)
    if port_file is not None:
        tmp = port_file.with_suffix(".tmp")
        tmp.write_text(str(port))
        tmp.replace(port_file)
    server.wait()
