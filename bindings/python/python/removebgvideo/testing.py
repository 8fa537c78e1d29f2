"""Testing helpers: the Rust sandbox in-process, for your own integration tests.

>>> from removebgvideo.testing import Sandbox
>>> with Sandbox(speed=1000) as sandbox:
...     client = sandbox.client()
...     job = client.create_job("https://example.com/a.mp4?duration=5")
...     client.wait(job.id).status
'completed'
"""

from __future__ import annotations

import json
from typing import Any, Dict, List

from . import _native
from ._client import Client

__all__ = ["Sandbox"]


class Sandbox:
    """A local emulator of the whole API on a loopback port chosen by the OS.

    Keyword arguments are sandbox settings (``speed``, ``output_url_ttl_ms``,
    ``max_upload_bytes``, ``webhook_secret``, ``faults``, ``keys``, ...; see the README).
    Use it as a context manager, or call ``stop()``.
    """

    def __init__(self, **config: Any) -> None:
        self._native = _native.NativeSandbox(json.dumps(config))

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return self._native.base_url

    @property
    def demo_key(self) -> str:
        """A key with ample credits."""
        return self._native.demo_key

    @property
    def no_credits_key(self) -> str:
        """A key without credits (starting a job raises InsufficientCreditsError)."""
        return self._native.no_credits_key

    @property
    def rate_limited_key(self) -> str:
        """A key with a very low rate limit."""
        return self._native.rate_limited_key

    @property
    def webhook_secret(self) -> str:
        """The secret that signs its webhooks."""
        return self._native.webhook_secret

    def client(self, **settings: Any) -> Client:
        """A ``Client`` for this sandbox with the demo key (settings override)."""
        settings.setdefault("api_key", self.demo_key)
        return Client(base_url=self.base_url, **settings)

    def request_log(self) -> List[Dict[str, Any]]:
        """Every request the sandbox has seen: request id, path, status, faults, ..."""
        return json.loads(self._native.request_log())  # type: ignore[no-any-return]

    def stop(self) -> None:
        """Stops the server (idempotent)."""
        self._native.stop()

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Sandbox(base_url={self.base_url!r})"
