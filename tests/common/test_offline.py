"""Fail fast without a network (fusionlib.common.offline): the probe answers at once, with the host and the reason.
The downloads that use it are checked offline in tests/reliability/test_offline.py."""

import socket
import time

import pytest

from fusionlib.common.offline import require_host


def test_a_listening_host_passes_and_a_closed_port_fails_naming_the_host():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        require_host(f"http://127.0.0.1:{port}/weights.pth", timeout=2)
    finally:
        server.close()
    start = time.perf_counter()
    with pytest.raises(ConnectionError, match=r"^127\.0\.0\.1 is unreachable \(ConnectionRefusedError"):
        require_host(f"http://127.0.0.1:{port}/weights.pth", timeout=2)
    assert time.perf_counter() - start < 2
