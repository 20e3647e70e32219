"""Servers on 127.0.0.1 that benchmarks and tests start: a free port, and waiting until one answers."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, proc: subprocess.Popen, timeout: float, log: Path | None = None) -> float:
    """Poll `url` until it answers 200; returns the seconds waited.

    Raises RuntimeError when the process exits or `timeout` passes, with the tail of its log.
    """
    started = time.monotonic()
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        exited = proc.poll() is not None
        if exited or time.monotonic() - started > timeout:
            why = "exited" if exited else f"did not answer {url} in {timeout:g} s"
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"{' '.join(map(str, proc.args))} {why}" + (f":\n{tail}" if tail else ""))
        time.sleep(0.3)
