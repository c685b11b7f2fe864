"""Issue 12 item 7: with no network, ``download=True`` fails within seconds with the same instructions
as the offline path (the network is replaced by a refusing socket; nothing is contacted)."""

import socket
import time

import pytest

from fusionlib.common import offline
from fusionlib.common.perceptual import load_vgg19


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    calls = []

    def refuse(address, timeout=None, *args, **kwargs):
        calls.append((address, timeout))
        raise OSError("Network is unreachable")
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # empty caches
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return calls


def test_require_host_names_host_and_reason(no_network):
    with pytest.raises(ConnectionError, match=r"^example\.org is unreachable \(OSError: Network is unreachable\)$"):
        offline.require_host("https://example.org/a/b.pth", timeout=2)
    assert no_network == [(("example.org", 443), 2)]


def test_vgg_download_fails_fast_with_the_offline_instructions(no_network):
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError) as info:
        load_vgg19(download=True)
    assert time.perf_counter() - start < 5
    msg = str(info.value)
    assert msg.startswith("download=True failed (download.pytorch.org is unreachable")
    assert "weights not found" in msg and "IMAGENET1K_V1" in msg and "weights='random'" in msg
    assert no_network[0][0] == ("download.pytorch.org", 443)


def test_clip_download_fails_fast_with_the_offline_instructions(no_network):
    from fusionlib.ldfusion.clip import load_clip
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError) as info:
        load_clip("ViT-B-32", "openai", download=True)
    assert time.perf_counter() - start < 10  # open_clip's own retries took about 50 s
    msg = str(info.value)
    assert msg.startswith("download=True failed (huggingface.co is unreachable")
    assert "not available locally" in msg and "allow_random=True" in msg
