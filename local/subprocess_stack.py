"""The local stack as `make run` starts it, in a separate process on free ports: for end-to-end tests and
benchmarks that must drive it over HTTP only (one home for this, not one copy per caller)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StackProcess:
    """`with StackProcess(log_path, SEED="0", SMS_RATE_PER_S="3") as stack:` -> stack.api, stack.dev, stack.aws."""

    def __init__(self, log_path: Path, startup_timeout_s: float = 90, **environment: str):
        self.ports = {"LOCAL_AWS_PORT": free_port(), "PORT": free_port(), "DEV_PORT": free_port()}
        self.api = f"http://127.0.0.1:{self.ports['PORT']}"
        self.dev = f"http://127.0.0.1:{self.ports['DEV_PORT']}"
        self.aws = f"http://127.0.0.1:{self.ports['LOCAL_AWS_PORT']}"
        self.log_path = log_path
        self.startup_timeout_s = startup_timeout_s
        self.environment = environment
        self.startup_s: float | None = None
        self._process: subprocess.Popen | None = None
        self._log = None

    def __enter__(self) -> StackProcess:
        import requests

        # The parent's own local-stack settings (a test session's stack) must not leak into the child.
        env = {k: v for k, v in os.environ.items()
               if not k.endswith(("_TABLE", "_QUEUE_URL", "_STATE_MACHINE_ARN", "_TOPIC_ARN"))
               and k not in ("AWS_ENDPOINT_URL", "MOTO_PORT", "EVIDENCE_BUCKET", "LOCAL_STACK")}
        env.update({k: str(v) for k, v in self.ports.items()})
        env["PERSIST"] = "0"  # each run starts empty unless the caller asks otherwise
        env.update(self.environment)
        # Output to a file, not a pipe: an unread pipe fills up and blocks the stack mid-run.
        self._log = open(self.log_path, "w")
        started = time.monotonic()
        self._process = subprocess.Popen([sys.executable, "-m", "local.stack"], cwd=ROOT, env=env, stdout=self._log,
                                         stderr=subprocess.STDOUT)
        deadline = started + self.startup_timeout_s
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"local stack exited early:\n{self.log_path.read_text()[-4000:]}")
            try:
                if requests.get(f"{self.api}/v1/health", timeout=1).json() == {"status": "ok"}:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"local stack not healthy after {self.startup_timeout_s}s")
            time.sleep(0.2)
        self.startup_s = time.monotonic() - started
        return self

    def __exit__(self, *_exc) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
        if self._log is not None:
            self._log.close()

    def log_tail(self, limit: int = 8000) -> str:
        """The stack's own log lines, without the per-request access log."""
        lines = [line for line in self.log_path.read_text().splitlines() if not line.startswith("127.0.0.1 - -")]
        return "\n".join(lines)[-limit:]
