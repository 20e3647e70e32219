"""The suite itself runs offline: a hidden download fails loudly instead of passing by luck."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import pytest_socket

from rag.offline import OFFLINE_ENV, tiktoken_cache_dir


@pytest.mark.filterwarnings("ignore:A test tried to use socket:UserWarning")
def test_connections_outside_loopback_are_blocked(monkeypatch):
    attempted = []
    # Should the guard be missing, record the attempt instead of sending a packet anywhere.
    monkeypatch.setattr(pytest_socket, "_true_connect", lambda sock, addr: attempted.append(addr))
    with socket.socket() as sock, pytest.raises(pytest_socket.SocketConnectBlockedError):
        sock.connect(("192.0.2.1", 80))
    assert attempted == []


def test_enforce_offline_sets_every_switch_in_a_clean_process():
    # A fresh interpreter without any of the switches: the conftest's own call proves nothing.
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE_ENV}
    code = (
        "import json, os\n"
        "from rag.offline import OFFLINE_ENV, enforce_offline\n"
        "enforce_offline()\n"
        "print(json.dumps({k: os.environ.get(k) for k in OFFLINE_ENV}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == OFFLINE_ENV


def test_tiktoken_encoding_ships_with_llama_index():
    from rag.tokens import get_encoding

    assert any(tiktoken_cache_dir().iterdir())
    assert len(get_encoding().encode("refining capacity")) > 0
