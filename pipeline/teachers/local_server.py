"""Start, wait for and stop the vLLM OpenAI-compatible servers that play the local teacher.

Each server runs inside a Ray actor, so it lands on a node with the GPUs it asks for; on one
machine that is a server on a free loopback port. It is stopped with its whole process group
when the build ends, whether the build succeeded or not.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import ray

from pipeline.engine.config import RunError
from pipeline.teachers.model_hosts import ModelHosts
from pipeline.teachers.offline_engine import as_flags, model_settings, model_source


class LocalServerError(RunError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class LocalTeacherServer:
    """Context manager: `with LocalTeacherServer(cfg.teacher, log) as base_url: ...`"""

    def __init__(self, teacher_cfg: Any, log_path: Path, host: str = "127.0.0.1") -> None:
        self.cfg = teacher_cfg
        self.log_path = log_path
        self.host = host
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> str:
        port = free_port(self.host)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # Ray sets OMP_NUM_THREADS=1 in its workers; the engine sizes its own thread pools.
        env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
        env.update(VLLM_CPU_KVCACHE_SPACE=str(self.cfg.kv_cache_gib),
                   HF_HUB_OFFLINE="1", VLLM_NO_USAGE_STATS="1", DO_NOT_TRACK="1")
        cmd = self.command(model_source(self.cfg), port)
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        base_url = f"http://{self.host}:{port}/v1"
        try:
            self._wait_ready(base_url)
        except BaseException:
            self.stop()
            raise
        return base_url

    def command(self, model: str, port: int) -> list[str]:
        """The server's command line, worked out on the node that runs it."""
        return [sys.executable, "-m", "vllm.entrypoints.openai.api_server",
                "--host", self.host, "--port", str(port),
                *as_flags(model_settings(self.cfg, str(model)))]

    def _wait_ready(self, base_url: str) -> None:
        deadline = time.monotonic() + self.cfg.startup_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LocalServerError(f"the local vLLM server exited with code "
                                       f"{self.proc.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{base_url}/models", timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(2)
        raise LocalServerError(f"the local vLLM server was not ready after "
                               f"{self.cfg.startup_timeout_s:.0f}s (teacher.startup_timeout_s); "
                               f"see {self.log_path}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        pgid = os.getpgid(self.proc.pid)
        os.killpg(pgid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.proc.wait()
        # the server's children (engine core) share the group; make sure none is left
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _ServerHost:
    """One vLLM server on whichever node Ray placed this actor, with the GPUs it reserved."""

    def __init__(self, teacher_cfg: Any, log_path: str, on_cluster: bool) -> None:
        host = ray.util.get_node_ip_address() if on_cluster else "127.0.0.1"
        self.server = LocalTeacherServer(teacher_cfg, Path(log_path), host)
        # The server runs in a session of its own (so that its whole group can be stopped):
        # when Ray ends this worker without `stop` (a driver gone, a SIGTERM), it would outlive
        # it. Ray's SIGTERM to a worker exits through atexit.
        atexit.register(self.server.stop)

    def start(self) -> str:
        return self.server.__enter__()

    def stop(self) -> None:
        self.server.stop()


def local_servers(teacher_cfg: Any, log_path: Path, on_cluster: bool) -> ModelHosts:
    """`teacher.replicas` servers, a log each; entered, it returns their URLs. On one machine
    that is one server on loopback."""
    t = teacher_cfg
    logs = [log_path.with_name(f"{log_path.stem}-{i}{log_path.suffix}") if t.replicas > 1
            else log_path for i in range(t.replicas)]
    return ModelHosts(t, _ServerHost, [(t, str(log), on_cluster) for log in logs],
                      "the local teacher", str(log_path))
