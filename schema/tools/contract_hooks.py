"""schemathesis hooks for `cargo xtask contract`.

The API asks for a unique Idempotency-Key per logical request, reused only on its retries.
Generated keys repeat ("", "0", ...), so the sandbox would answer most generated POSTs with
409 (the key was used with another body) or replay an earlier answer, before it ever reads the
body: schemathesis counts a 409 as an acceptable answer, so the body's checks would pass
without testing anything. So every request's key is replaced by a fresh one, as a client
would send it, unless the headers are what a negative case makes invalid: a key too long (or
a missing API key) must reach the server as generated, to be refused.
"""

import uuid

import schemathesis
from schemathesis.core.parameters import ParameterLocation

HEADER = "idempotency-key"


@schemathesis.hook
def before_call(context, case, kwargs):
    meta = case.meta
    if meta is not None and meta.is_negative_at(ParameterLocation.HEADER):
        return
    for name in list(case.headers or {}):
        if name.lower() == HEADER:
            case.headers[name] = uuid.uuid4().hex
