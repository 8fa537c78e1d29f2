"""Webhooks: verification (HMAC-SHA256 over the raw body, in constant time, with a timestamp
tolerance against replays), a client's deliveries (``Client.handle_webhook`` for a framework's
route, ``Client.listen_for_webhooks`` for a receiver of the SDK's own) — all in Rust; this
module only converts."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from . import _native
from ._units import to_ms as _ms
from ._models import Job, _Model

__all__ = ["VerifiedWebhook", "WebhookDelivery", "WebhookReceiver", "verify_webhook"]


@dataclasses.dataclass
class VerifiedWebhook(_Model):
    """A delivery whose signature and timestamp checked out."""

    #: ``job.started``, ``job.completed`` or ``job.failed``.
    event: str
    #: When it was signed, as sent.
    timestamp: str
    #: The job.
    data: Job
    #: The delivery id (the same on redeliveries: use it to drop duplicates).
    delivery_id: Union[str, None] = None
    _nested = {"data": "Job"}


@dataclasses.dataclass
class WebhookDelivery(VerifiedWebhook):
    """A verified delivery as a client took it (``Client.handle_webhook``)."""

    #: Taken before (a redelivery): answer 2xx again; its waits already had it.
    duplicate: bool = False


#: Headers as a framework gives them: a mapping (Flask's ``request.headers``, Starlette's),
#: ``(name, value)`` pairs, or an ASGI scope's raw ``(bytes, bytes)`` pairs.
HeadersLike = Union[Mapping[str, str], Sequence[Tuple[Union[str, bytes], Union[str, bytes]]]]


def _header_pairs(headers: Any) -> List[Tuple[str, str]]:
    pairs = list(headers.items()) if hasattr(headers, "items") else list(headers)

    def text(value: Any) -> str:
        return value.decode("latin-1") if isinstance(value, (bytes, bytearray)) else str(value)
    return [(text(k), text(v)) for k, v in pairs]


class WebhookReceiver:
    """A receiver the SDK runs (``Client.listen_for_webhooks``): an HTTP listener that verifies
    every delivery, drops duplicates, answers 2xx once a delivery is taken (400 to a forged or
    stale one, logged without its body) and hands each job update to the client's waits.
    Stop it with ``stop()`` or ``with``."""

    def __init__(self, native: Any) -> None:
        self._native = native

    @property
    def url(self) -> str:
        """The URL deliveries are posted to."""
        return str(self._native.url)

    def stats(self) -> Dict[str, int]:
        """Deliveries ``accepted``, ``duplicates`` and requests ``rejected`` so far."""
        return dict(json.loads(self._native.stats()))

    def stop(self) -> None:
        """Stops listening; later calls do nothing."""
        self._native.stop()

    def __enter__(self) -> "WebhookReceiver":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"WebhookReceiver(url={self.url!r})"


def _delivery(data: Dict[str, Any]) -> WebhookDelivery:
    return WebhookDelivery(event=data["event"], timestamp=data["timestamp"], data=Job.from_dict(data["data"]),
                           delivery_id=data.get("delivery_id"), duplicate=bool(data.get("duplicate")))


def verify_webhook(body: bytes, headers: Union[Mapping[str, str], Sequence[Tuple[str, str]]], secret: str,
                   tolerance: Optional[float] = None, *, now: Optional[float] = None) -> VerifiedWebhook:
    """Verifies a delivery against the raw ``body`` bytes exactly as received (before any JSON
    parsing). Raises ``WebhookVerificationError`` on a missing header, a bad signature or a
    timestamp more than ``tolerance`` seconds away from now (the SDK's default, 300 s, when
    ``None``; ``now``, Unix seconds, replays a captured delivery at its own time)."""
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    wire = {"headers": [(str(k), str(v)) for k, v in pairs], "secret": secret, "tolerance_ms": _ms(tolerance),
            "now_ms": _ms(now)}
    data: Any = json.loads(_native.verify_webhook(bytes(body), json.dumps({k: v for k, v in wire.items() if v is not None})))
    return VerifiedWebhook(event=data["event"], timestamp=data["timestamp"], data=Job.from_dict(data["data"]),
                           delivery_id=data.get("delivery_id"))
