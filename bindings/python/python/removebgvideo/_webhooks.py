"""Webhook verification: HMAC-SHA256 over the raw body, in constant time, with a timestamp
tolerance against replays (all in Rust)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Mapping, Optional, Sequence, Tuple, Union

from . import _native
from ._units import to_ms as _ms
from ._models import Job, _Model

__all__ = ["VerifiedWebhook", "verify_webhook"]


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
