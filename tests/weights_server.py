"""A local HTTP server on 127.0.0.1 for the download tests: never the internet.

Each file is served by its path with a behaviour: "normal" (honours Range), "slow" (small
chunks with pauses), "cut" (the first request stops halfway and closes; later ones behave),
"norange" (ignores Range: always the whole file with 200). Unknown paths get 404. Every request
line and its Range header are recorded, so tests can check what the client asked for.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def clear_proxies(monkeypatch) -> None:
    """The machine's proxy settings must not see requests to 127.0.0.1."""
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.upper(), raising=False)


def isolate_install_dirs(tmp_path, monkeypatch):
    """Install folders in tmp (torch's hub cache, the YOLACT weights folder) and no proxy."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("MASKSCOPE_WEIGHTS_DIR", str(tmp_path / "weights"))
    clear_proxies(monkeypatch)
    return tmp_path


@dataclass
class Served:
    data: bytes
    mode: str = "normal"
    requests: int = 0


@dataclass
class WeightsServer:
    files: dict[str, Served] = field(default_factory=dict)
    log: list[tuple[str, str | None]] = field(default_factory=list)  # (request path, Range header)
    slow_delay: float = 0.05
    port: int = 0

    def add(self, path: str, data: bytes, mode: str = "normal") -> str:
        self.files[path] = Served(data, mode)
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def sha_prefix(data: bytes, n: int = 8) -> str:
    return hashlib.sha256(data).hexdigest()[:n]


def _handler(state: WeightsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            state.log.append((self.path, self.headers.get("Range")))
            # A proxied request names the whole URL; serve it by its path.
            path = "/" + self.path.split("://", 1)[1].split("/", 1)[1] if "://" in self.path else self.path
            served = state.files.get(path)
            if served is None:
                self.send_error(404, "Not Found")
                return
            served.requests += 1
            data, start = served.data, 0
            range_header = self.headers.get("Range")
            if range_header and served.mode != "norange":
                start = int(range_header.removeprefix("bytes=").split("-")[0])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            if served.mode == "cut" and served.requests == 1:
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            step = 4096 if served.mode == "slow" else 65536
            try:
                for i in range(0, len(body), step):
                    self.wfile.write(body[i : i + step])
                    if served.mode == "slow":
                        self.wfile.flush()
                        time.sleep(state.slow_delay)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client cancelled

    return Handler


class running_server:  # noqa: N801 - used as a context manager
    """``with running_server() as server:`` a WeightsServer listening on 127.0.0.1."""

    def __enter__(self) -> WeightsServer:
        self.state = WeightsServer()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        self.httpd.daemon_threads = True
        self.state.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self.state

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
