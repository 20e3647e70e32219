"""The suite itself runs offline: a hidden download fails loudly instead of passing by luck."""

from __future__ import annotations

import os
import socket

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


def test_offline_switches_are_set():
    # Libraries may set a switch first in their own spelling (gradio writes "True" for "1").
    same = {"1": "true", "true": "1", "0": "false", "false": "0"}
    for key, value in OFFLINE_ENV.items():
        assert os.environ[key].lower() in {value.lower(), same.get(value.lower())}, key


def test_tiktoken_encoding_ships_with_llama_index():
    from rag.tokens import get_encoding

    assert any(tiktoken_cache_dir().iterdir())
    assert len(get_encoding().encode("refining capacity")) > 0
