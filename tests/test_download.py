"""engine.download against a local HTTP server on 127.0.0.1 (started here), never the internet."""

from __future__ import annotations

import os
import threading

import pytest
from weights_server import clear_proxies, running_server, sha_prefix

from engine.download import DownloadCancelled, DownloadError, HashMismatch, Progress, download, part_path

PAYLOAD = os.urandom(300_000)


@pytest.fixture
def server(monkeypatch):
    clear_proxies(monkeypatch)
    with running_server() as state:
        yield state


def test_normal_download_verifies_and_reports(server, tmp_path):
    url = server.add(f"/models/weights-{sha_prefix(PAYLOAD)}.pth", PAYLOAD)
    seen: list[Progress] = []
    dest = download(url, tmp_path / "sub" / "w.pth", sha256_prefix=sha_prefix(PAYLOAD), progress=seen.append)
    assert dest.read_bytes() == PAYLOAD
    assert not part_path(dest).exists()
    assert seen[-1].done == seen[-1].total == len(PAYLOAD) and seen[-1].eta == 0
    assert seen[-1].rate > 0 and seen[-1].fraction == 1.0
    assert [p.done for p in seen] == sorted(p.done for p in seen)
    assert server.log == [(f"/models/weights-{sha_prefix(PAYLOAD)}.pth", None)]


def test_slow_download_cancelled_midway_then_resumed(server, tmp_path):
    url = server.add("/slow.pth", PAYLOAD, mode="slow")
    dest = tmp_path / "slow.pth"
    stop = threading.Event()

    def on_progress(p: Progress) -> None:
        if p.done >= 20_000:
            stop.set()

    with pytest.raises(DownloadCancelled, match="cancelled after"):
        download(url, dest, progress=on_progress, cancel=stop, chunk_bytes=4096)
    kept = part_path(dest).stat().st_size
    assert 0 < kept < len(PAYLOAD) and not dest.exists()
    assert part_path(dest).read_bytes() == PAYLOAD[:kept]
    server.files["/slow.pth"].mode = "normal"
    download(url, dest, sha256_prefix=sha_prefix(PAYLOAD), cancel=lambda: False)
    assert dest.read_bytes() == PAYLOAD
    assert server.log[-1] == ("/slow.pth", f"bytes={kept}-")


def test_interrupted_download_resumes_with_range(server, tmp_path):
    url = server.add("/cut.pth", PAYLOAD, mode="cut")
    dest = tmp_path / "cut.pth"
    with pytest.raises(DownloadError, match="stopped after .* Download again to continue"):
        download(url, dest, sha256_prefix=sha_prefix(PAYLOAD))
    kept = part_path(dest).stat().st_size
    assert kept == len(PAYLOAD) // 2 and not dest.exists()
    seen: list[Progress] = []
    download(url, dest, sha256_prefix=sha_prefix(PAYLOAD), progress=seen.append)
    assert dest.read_bytes() == PAYLOAD
    assert server.log[-1] == ("/cut.pth", f"bytes={kept}-")
    assert seen[0].done >= kept and seen[-1].done == len(PAYLOAD)  # counts from the kept part


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    url = server.add("/norange.pth", PAYLOAD, mode="norange")
    dest = tmp_path / "norange.pth"
    part_path(dest).write_bytes(PAYLOAD[:1000])
    download(url, dest, sha256_prefix=sha_prefix(PAYLOAD))
    assert dest.read_bytes() == PAYLOAD  # not the 1000 bytes twice
    assert server.log[-1] == ("/norange.pth", "bytes=1000-")


def test_complete_part_is_not_downloaded_again(server, tmp_path):
    url = server.add("/done.pth", PAYLOAD)
    dest = tmp_path / "done.pth"
    part_path(dest).write_bytes(PAYLOAD)
    download(url, dest, sha256_prefix=sha_prefix(PAYLOAD))
    assert dest.read_bytes() == PAYLOAD


def test_part_longer_than_file_starts_over(server, tmp_path):
    url = server.add("/grown.pth", PAYLOAD)
    dest = tmp_path / "grown.pth"
    part_path(dest).write_bytes(PAYLOAD + b"junk")
    download(url, dest, sha256_prefix=sha_prefix(PAYLOAD))
    assert dest.read_bytes() == PAYLOAD


def test_wrong_hash_deletes_the_file(server, tmp_path):
    url = server.add("/weights-deadbeef.pth", PAYLOAD)
    dest = tmp_path / "weights-deadbeef.pth"
    with pytest.raises(HashMismatch) as info:
        download(url, dest, sha256_prefix="deadbeef")
    message = str(info.value)
    assert "not the published file" in message and "deadbeef" in message and sha_prefix(PAYLOAD) in message
    assert "deleted" in message
    assert not dest.exists() and not part_path(dest).exists()


def test_404_is_a_clear_error(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(server.url("/missing.pth"), tmp_path / "missing.pth")
    assert not (tmp_path / "missing.pth").exists() and not part_path(tmp_path / "missing.pth").exists()


def test_unreachable_server_names_the_proxy_variables(server, tmp_path):
    with running_server() as other:
        dead = other.url("/x.pth")  # nothing listens there once the block ends
    with pytest.raises(DownloadError, match="Could not connect to 127.0.0.1.*HTTPS_PROXY"):
        download(dead, tmp_path / "x.pth", timeout=5)


def test_proxy_from_environment_is_used(server, tmp_path, monkeypatch):
    """urllib honours HTTP_PROXY: the request goes to the proxy with the full URL in it."""
    server.add("/proxied.pth", PAYLOAD)
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{server.port}")
    dest = download("http://models.example.invalid/proxied.pth", tmp_path / "p.pth")
    assert dest.read_bytes() == PAYLOAD
    assert server.log[-1][0] == "http://models.example.invalid/proxied.pth"
