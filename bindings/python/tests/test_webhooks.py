"""Webhooks in Python: ``handle_webhook`` behind a real WSGI route (wsgiref) and the SDK's own
receiver, each fed by the sandbox's real, signed deliveries; waits end on them."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Tuple
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

import removebgvideo
from removebgvideo import AsyncClient, Client, WebhookDelivery, WebhookVerificationError
from removebgvideo.testing import Sandbox

VIDEO = "https://example.com/clip.mp4?duration=4"


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:  # the test output stays readable
        pass


def _wsgi_route(client: Client, taken: List[WebhookDelivery], refused: List[str],
                raw: List[Tuple[bytes, Dict[str, str]]]) -> Callable[..., Any]:
    """A WSGI app as a user would write it: raw body and headers in, 2xx or 400 out."""

    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> List[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        headers = {key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key.startswith("HTTP_")}
        raw.append((body, headers))
        try:
            taken.append(client.handle_webhook(body, headers))
        except WebhookVerificationError as error:
            refused.append(error.code)
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [b"refused"]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    return app


@pytest.fixture()
def route() -> Iterator[Tuple[Client, Sandbox, List[WebhookDelivery], List[str], List[Tuple[bytes, Dict[str, str]]]]]:
    with Sandbox(speed=10) as sandbox:
        client = Client(sandbox.demo_key, base_url=sandbox.base_url)
        taken: List[WebhookDelivery] = []
        refused: List[str] = []
        raw: List[Tuple[bytes, Dict[str, str]]] = []
        server = make_server("127.0.0.1", 0, _wsgi_route(client, taken, refused, raw), handler_class=_Quiet)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        client.use_webhooks(f"http://127.0.0.1:{server.server_port}/webhooks", secret=sandbox.webhook_secret)
        try:
            yield client, sandbox, taken, refused, raw
        finally:
            server.shutdown()
            thread.join()


def _eventually(check: Callable[[], bool], within: float = 5.0) -> bool:
    """Bounded polling: `check` holds within `within` seconds."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _reads(sandbox: Sandbox, job_id: str) -> int:
    return sum(1 for r in sandbox.request_log() if r["method"] == "GET" and r["path"] == f"/v1/jobs/{job_id}")


def test_a_wsgi_route_ends_waits_on_success_and_on_failure(route: Any) -> None:
    client, sandbox, taken, refused, _ = route
    result = client.run(VIDEO)
    assert result.job.status == "completed"
    events = [d.event for d in taken if d.data.id == result.job.id]
    assert "job.completed" in events, events
    assert all(isinstance(d, WebhookDelivery) and d.delivery_id for d in taken)
    # Ended on the delivery and one confirming read, not on polls.
    assert _reads(sandbox, result.job.id) <= 2
    with pytest.raises(removebgvideo.JobFailedError) as failed:
        client.run(VIDEO + "&scenario=fail")
    job = failed.value.job
    assert job is not None and job.status == "failed"
    assert "job.failed" in [d.event for d in taken if d.data.id == job.id]
    assert refused == []


def test_forged_tampered_and_duplicate_deliveries(route: Any) -> None:
    client, _, taken, _, raw = route
    client.run(VIDEO)
    body, headers = raw[-1]
    # A redelivery of a real delivery: taken, marked a duplicate, the same typed event.
    again = client.handle_webhook(body, list(headers.items()))
    assert again.duplicate and again.event == taken[-1].event and again.data.id == taken[-1].data.id
    # The same headers on a body changed by one byte, and a signature nobody made.
    with pytest.raises(WebhookVerificationError):
        client.handle_webhook(body.replace(b"completed", b"completeD"), headers)
    forged = dict(headers, **{name: "v1=" + "00" * 32 for name in headers if "signature" in name})
    with pytest.raises(WebhookVerificationError):
        client.handle_webhook(body, forged)
    with pytest.raises(WebhookVerificationError):
        client.handle_webhook(body, {})


def test_the_sdks_own_receiver_feeds_sync_and_async_waits() -> None:
    with Sandbox(speed=10) as sandbox:
        client = Client(sandbox.demo_key, base_url=sandbox.base_url)
        with client.listen_for_webhooks(secret=sandbox.webhook_secret) as receiver:
            assert receiver.url.startswith("http://127.0.0.1:")
            job = client.run(VIDEO).job
            assert job.status == "completed"
            assert _reads(sandbox, job.id) <= 2
            # Counted once its answer is decided, a moment after it fed the wait.
            assert _eventually(lambda: receiver.stats()["accepted"] >= 2), receiver.stats()

        async def run_async() -> Any:
            aclient = AsyncClient(sandbox.demo_key, base_url=sandbox.base_url)
            with aclient.listen_for_webhooks(secret=sandbox.webhook_secret):
                return await asyncio.gather(aclient.run(VIDEO), aclient.run(VIDEO + "&model=light"))

        done = asyncio.run(run_async())
        assert [r.job.status for r in done] == ["completed", "completed"]
        assert all(_reads(sandbox, r.job.id) <= 2 for r in done)


def test_bad_settings_name_the_field() -> None:
    client = Client("rbv_test", base_url="http://127.0.0.1:9")
    with pytest.raises(removebgvideo.ValidationError) as error:
        client.use_webhooks("not a url", secret="s")
    assert error.value.problems[0].path == "/url"
    with pytest.raises(removebgvideo.ValidationError) as error:
        client.listen_for_webhooks(secret="s", host="localhost!")
    assert error.value.problems[0].path == "/host"
