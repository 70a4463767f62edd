"""A small HTTP server on loopback that stands in for Home Assistant's media URLs (the
announcements and spoken answers the satellite fetches), for the tests and the bench."""

from __future__ import annotations

import http.server
import threading


class MediaServer:
    """Serves `files` (path → bytes) on `host`, a free port; 404 for anything else.
    `hits` lists the paths asked for. Use it as a context manager."""

    def __init__(
        self, files: dict[str, bytes], host: str = "127.0.0.1",
        redirects: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        """`redirects`: paths answered with a redirect to another URL."""
        media = self
        self.files = files
        self.redirects = redirects or {}
        self.hits: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
                media.hits.append(self.path)
                if self.path in media.redirects:
                    self.send_response(302)
                    self.send_header("Location", media.redirects[self.path])
                    self.end_headers()
                    return
                body = media.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.base = f"http://{host}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> MediaServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
