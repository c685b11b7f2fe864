"""Fail fast without a network: a download is tried only after its host answered within seconds.

Libraries retry for a long time before giving up (open_clip through huggingface_hub: about 50 s)
or raise a bare ``URLError`` (torchvision). :func:`require_host` probes the host first, so the
caller can raise its own "how to get the weights" message at once.
"""

from __future__ import annotations

import socket
from urllib.parse import urlparse

__all__ = ["require_host"]


def require_host(url: str, timeout: float = 5.0) -> None:
    """Raise ``ConnectionError`` (one line: host and reason) unless ``url``'s host accepts a TCP
    connection within ``timeout`` seconds."""
    parsed = urlparse(url)
    host = parsed.hostname or url
    port = parsed.port or (80 if parsed.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise ConnectionError(f"{host} is unreachable ({type(exc).__name__}: {exc or 'no detail'})") from None
