"""Every method and exception of ``Client`` against the sandbox over loopback HTTP."""

from __future__ import annotations

import inspect
import logging
import multiprocessing
import pathlib
import pickle
import signal
import subprocess
import sys
import threading
import time

import pytest

import removebgvideo
from removebgvideo import Background, Client, Event, PollPolicy, RetryPolicy
from removebgvideo.testing import Sandbox

from conftest import VIDEO

FAST_POLL = PollPolicy(initial_interval=0.02, max_interval=0.2, min_interval=0.01)
FAST_RETRY = RetryPolicy(max_retries=3, base_delay=0.01, max_delay=0.1, rate_limit_base_delay=0.02, rate_limit_max_delay=0.2)


def fast_client(sandbox: Sandbox, **settings: object) -> Client:
    return sandbox.client(poll_policy=FAST_POLL, retry_policy=FAST_RETRY, **settings)  # type: ignore[arg-type]


def test_every_method(sandbox: Sandbox, tmp_path: pathlib.Path) -> None:
    client = fast_client(sandbox)
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00" * 40_000)
    events: list[Event] = []
    uploaded = client.upload(video, on_progress=events.append)
    assert uploaded.size == 40_000 and uploaded.video_url.startswith(sandbox.base_url)
    assert any(e.type == "upload" and e.bytes_done == e.bytes_total for e in events)

    accepted = client.create_job(uploaded.video_url, auto_start=False, background=Background.rgb(0.1, 0.2, 0.3),
                                 output_format="mov", metadata={"order": "A-1"})
    assert accepted.status == "created" and accepted.request_id
    started = client.start_job(accepted.id, model="pro", text_prompt="the person", background="white")
    assert started.status == "processing"
    statuses: list[str] = []
    job = client.wait(accepted.id, on_progress=lambda e: statuses.append(e.to) if e.type == "status_changed" and e.to else None)
    assert job.status == "completed" and statuses[-1] == "completed"
    assert job.model == "pro" and job.request_id
    assert client.get_job(accepted.id).id == job.id
    listing = client.list_jobs(limit=100)
    assert accepted.id in [j.id for j in listing.jobs]
    assert client.usage_summary(days=7).completed_jobs >= 1
    assert client.usage_events(limit=5).events
    assert client.legacy_download(accepted.id).download_url.startswith(sandbox.base_url)
    target = tmp_path / "out.mov"
    download = client.download(accepted.id, target)
    assert download.bytes == target.stat().st_size > 0
    with pytest.raises(removebgvideo.DownloadError):
        client.download(job, target)
    result = client.run(f"{VIDEO}?duration=2", output=tmp_path / "run.webm", model="human")
    assert result.job.status == "completed" and result.output is not None and result.output.bytes == 400_000
    with pytest.raises(removebgvideo.ValidationError) as no_source:
        client.run()
    assert no_source.value.errors[0].path == "/video_url"
    with pytest.raises(removebgvideo.ValidationError):
        client.run(VIDEO, file=video)
    from_file = client.run(file=video, output=tmp_path / "file.webm")
    assert from_file.upload is not None and pathlib.Path(from_file.output.path).exists()  # type: ignore[union-attr]


def test_results_are_typed_comparable_and_convertible(sandbox: Sandbox) -> None:
    client = fast_client(sandbox)
    accepted = client.create_job(f"{VIDEO}?duration=1")
    job = client.wait(accepted.id)
    assert isinstance(job, removebgvideo.Job)
    assert job.to_dict()["id"] == job.id
    assert removebgvideo.Job.from_dict(job.to_dict()) == job
    assert "Job(id=" in repr(job)


def test_exceptions_carry_code_status_and_request_id(sandbox: Sandbox) -> None:
    bad = Client(api_key="rbv_wrong", base_url=sandbox.base_url)
    with pytest.raises(removebgvideo.AuthenticationError) as auth:
        bad.list_jobs()
    assert (auth.value.code, auth.value.status) == ("invalid_api_key", 401) and auth.value.request_id
    poor = fast_client(sandbox, api_key=sandbox.no_credits_key)
    with pytest.raises(removebgvideo.InsufficientCreditsError) as credits:
        poor.create_job(VIDEO)
    assert credits.value.status == 402 and credits.value.idempotency_key
    client = fast_client(sandbox)
    with pytest.raises(removebgvideo.NotFoundError):
        client.get_job("job_missing")
    with pytest.raises(removebgvideo.ValidationError) as invalid:
        client.create_job("ftp://example.com/a.mp4", model="ultra", output_format="mp4", background=(2, 0, 0))
    assert [(p.path, p.code) for p in invalid.value.errors] == [
        ("/video_url", "invalid_url"), ("/model", "unknown_value"), ("/background", "out_of_range")]
    assert isinstance(invalid.value, ValueError)
    with pytest.raises(removebgvideo.ValidationError):
        client.create_job(VIDEO, background="plaid")
    # A 429 pauses every call of the client that got it (its rate gate): a client of its own.
    with pytest.raises(removebgvideo.RateLimitError) as limited:
        fast_client(sandbox).list_jobs(headers={"X-Sandbox-Fault": "status=429; id=py-rl"})
    assert limited.value.retry_after == 1.0
    with pytest.raises(removebgvideo.ServerError):
        client.list_jobs(headers={"X-Sandbox-Fault": "status=503; id=py-5xx"})
    with pytest.raises(removebgvideo.APIConnectionError) as broken:
        Client(api_key="k", base_url="http://127.0.0.1:9", max_retries=0).list_jobs()
    assert isinstance(broken.value, ConnectionError)
    with pytest.raises(removebgvideo.OutcomeUnknownError) as unknown:
        fresh = fast_client(sandbox)
        fresh.create_job(VIDEO, headers={"X-Sandbox-Fault": "drop-after; times=1; id=py-unknown"})
    assert unknown.value.idempotency_key
    with pytest.raises(removebgvideo.ConflictError):
        client.create_job(VIDEO, idempotency_key="py-conflict")
        client.create_job(f"{VIDEO}?other=1", idempotency_key="py-conflict")
    failing = client.create_job(f"{VIDEO}?scenario=fail&error=bad%20frames")
    with pytest.raises(removebgvideo.JobFailedError) as failed:
        client.wait(failing.id)
    assert failed.value.job is not None and failed.value.job.error == "bad frames"
    stuck = client.create_job(f"{VIDEO}?scenario=stuck")
    started = time.monotonic()
    with pytest.raises(removebgvideo.WaitTimeoutError) as timeout:
        client.wait(stuck.id, timeout=0.5)
    assert isinstance(timeout.value, TimeoutError) and timeout.value.job is not None
    assert time.monotonic() - started < 0.5 + 0.25 + 0.3
    with pytest.raises(removebgvideo.UnexpectedResponseError):
        client.get_job(stuck.id, max_retries=0, headers={"X-Sandbox-Fault": "malformed; id=py-bad"})


def test_every_error_kind_has_its_class() -> None:
    from removebgvideo import _native

    for kind, name in _native.exception_classes():
        cls = getattr(removebgvideo, name)
        assert issubclass(cls, removebgvideo.RemoveBGVideoError), kind
        assert cls.__doc__


def test_other_threads_keep_running_during_wait(sandbox: Sandbox) -> None:
    client = fast_client(sandbox)
    stuck = client.create_job(f"{VIDEO}?scenario=stuck")
    ticks = 0
    stop = threading.Event()

    def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    thread = threading.Thread(target=ticker)
    thread.start()
    with pytest.raises(removebgvideo.WaitTimeoutError):
        client.wait(stuck.id, timeout=0.5)
    stop.set()
    thread.join()
    assert ticks > 100, "the GIL was released while waiting"


def test_cancel_token_stops_a_wait(sandbox: Sandbox) -> None:
    client = fast_client(sandbox)
    stuck = client.create_job(f"{VIDEO}?scenario=stuck")
    token = removebgvideo.CancelToken()
    threading.Timer(0.2, token.cancel).start()
    started = time.monotonic()
    with pytest.raises(removebgvideo.CancelledError):
        client.wait(stuck.id, cancel=token, poll_policy=PollPolicy(initial_interval=5, max_interval=5))
    assert time.monotonic() - started < 1.0


def test_ctrl_c_interrupts_a_long_wait(sandbox: Sandbox) -> None:
    script = (
        "import faulthandler, signal, removebgvideo, sys\n"
        # A parent running in the background (a non-interactive shell's `&`) starts us with
        # SIGINT ignored, and then Python installs no KeyboardInterrupt handler: install the
        # one an interactive terminal gives.
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "faulthandler.register(signal.SIGUSR1, all_threads=True)\n"
        f"client = removebgvideo.Client(api_key={sandbox.demo_key!r}, base_url={sandbox.base_url!r})\n"
        f"job = client.create_job({VIDEO + '?scenario=stuck'!r})\n"
        "print('waiting', flush=True)\n"
        "try:\n    client.wait(job.id)\nexcept KeyboardInterrupt:\n    print('interrupted', flush=True)\n    sys.exit(7)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "waiting"
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    try:
        code = process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        # Where it hangs, for the failure message: every Python thread's stack.
        process.send_signal(signal.SIGUSR1)
        time.sleep(0.5)
        process.kill()
        _, stacks = process.communicate()
        raise AssertionError(f"Ctrl-C did not end the wait; stacks:\n{stacks}") from None
    assert code == 7
    assert process.stdout.readline().strip() == "interrupted"


def _wait_in_worker(args: tuple[Client, str]) -> str:
    client, job_id = args
    return client.wait(job_id).status


def test_pickled_client_works_in_a_multiprocessing_pool(sandbox: Sandbox) -> None:
    client = fast_client(sandbox)
    restored = pickle.loads(pickle.dumps(client))
    assert repr(restored) == repr(client)
    ids = [client.create_job(f"{VIDEO}?duration={d}").id for d in (1, 2, 3)]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        statuses = pool.map(_wait_in_worker, [(client, i) for i in ids])
    assert statuses == ["completed"] * 3


def test_the_key_never_shows(sandbox: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    client = fast_client(sandbox)
    assert sandbox.demo_key not in repr(client) and "[redacted]" in repr(client)
    with caplog.at_level(logging.INFO, logger="removebgvideo"):
        client.list_jobs(headers={"X-Sandbox-Fault": "status=503; times=1; id=py-log"})
    assert any("retry 1/3 of list_jobs" in r.getMessage() for r in caplog.records), caplog.text
    assert sandbox.demo_key not in caplog.text
    with pytest.raises(removebgvideo.NotFoundError) as error:
        client.get_job("job_none")
    assert sandbox.demo_key not in f"{error.value} {error.value!r}"


def test_webhooks_and_credits(sandbox: Sandbox) -> None:
    assert removebgvideo.estimate_credits("pro", 30) == 90
    with pytest.raises(removebgvideo.ValidationError):
        removebgvideo.estimate_credits("ultra", 10)
    with pytest.raises(removebgvideo.WebhookVerificationError) as error:
        removebgvideo.verify_webhook(b"{}", {"X-Webhook-Timestamp": "2026-11-27T12:00:00Z"}, "secret")
    assert error.value.code == "webhook_missing_header"


def test_http_base_urls_only_for_loopback() -> None:
    with pytest.raises(removebgvideo.ValidationError) as error:
        Client(api_key="k", base_url="http://api.example.com")
    assert error.value.errors[0].path == "/base_url"
    Client(api_key="k", base_url="https://api.example.com")


def test_missing_key_is_a_validation_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REMOVEBGVIDEO_API_KEY", raising=False)
    with pytest.raises(removebgvideo.ValidationError):
        Client()
    monkeypatch.setenv("REMOVEBGVIDEO_API_KEY", "from-env")
    assert Client() is not None


def test_poll_policy_fields_travel_in_milliseconds(sandbox: Sandbox) -> None:
    policy = PollPolicy(initial_interval=0.02, progress_eta=False, max_eta_interval=2.5, eta_margin=0.2)
    assert policy._wire() == {"initial_interval_ms": 20, "progress_eta": False, "max_eta_interval_ms": 2500, "eta_margin_ms": 200}
    client = fast_client(sandbox)
    accepted = client.create_job(VIDEO)
    following = PollPolicy(initial_interval=0.02, max_interval=0.2, min_interval=0.01, max_eta_interval=0.2, eta_margin=0.01)
    for chosen in (policy, following):
        assert client.wait(accepted.id, poll_policy=chosen).status == "completed"


def test_unusable_numbers_are_validation_errors_naming_their_field(sandbox: Sandbox) -> None:
    body = b'{"event":"job.completed","data":{"id":"job_1","status":"completed"}}'
    for tolerance in (float("inf"), float("nan"), -1.0, 1e20):
        with pytest.raises(removebgvideo.ValidationError) as caught:
            removebgvideo.verify_webhook(body, {}, "whsec_test", tolerance)
        assert caught.value.problems[0].path == "/tolerance"
    with pytest.raises(removebgvideo.ValidationError):
        removebgvideo.verify_webhook(body, {}, "whsec_test", now=float("inf"))
    with pytest.raises(removebgvideo.ValidationError) as caught:
        removebgvideo.verify_webhook(body, {}, "", 300)
    assert caught.value.problems[0].path == "/secret"
    with pytest.raises(removebgvideo.ValidationError) as caught:
        sandbox.client(timeout=float("inf"))
    assert caught.value.problems[0].path == "/settings/timeout"
    client = fast_client(sandbox)
    with pytest.raises(removebgvideo.ValidationError) as caught:
        client.wait("job_1", timeout=-5)
    assert caught.value.problems[0].path == "/arguments/timeout"
    with pytest.raises(removebgvideo.ValidationError) as caught:
        client.get_job("..")
    assert caught.value.problems[0].code == "invalid_job_id"
    assert issubclass(removebgvideo.SDKBugError, removebgvideo.RemoveBGVideoError)
    for speed in (0.0, 1e20, float("inf")):
        with pytest.raises(removebgvideo.ValidationError, match="speed"):
            Sandbox(speed=speed)



def test_the_webhook_tolerance_default_is_the_cores() -> None:
    # No default of its own: an absent tolerance reaches Rust as absent (webhook::DEFAULT_TOLERANCE).
    assert inspect.signature(removebgvideo.verify_webhook).parameters["tolerance"].default is None


def test_durations_are_seconds_in_python_and_milliseconds_only_on_the_wire(sandbox: Sandbox) -> None:
    from removebgvideo._units import to_ms

    assert [to_ms(v) for v in (1.5, 0, None, float("inf"), float("-inf"))] == [1500.0, 0.0, None, "Infinity", "-Infinity"]
    assert to_ms(float("nan")) == "NaN" and to_ms("soon") == "soon" and to_ms(True) is True
    assert RetryPolicy(base_delay=0.25, max_retries=1)._wire() == {"max_retries": 1, "base_delay_ms": 250.0}
    client = fast_client(sandbox)
    job = client.create_job(f"{VIDEO}?scenario=stuck")
    slow = {"X-Sandbox-Fault": "latency-ms=200; id=py-slow-1"}
    with pytest.raises(removebgvideo.APIConnectionError):
        client.get_job(job.id, timeout=0.001, max_retries=0, headers=slow)
    assert client.get_job(job.id, timeout=5, max_retries=0, headers={"X-Sandbox-Fault": "latency-ms=200; id=py-slow-2"}).id == job.id
    for bad, shown in ((-1, "(got -1)"), (float("nan"), "(got NaN)"), ("soon", "invalid type")):
        with pytest.raises(removebgvideo.ValidationError) as caught:
            sandbox.client(connect_timeout=bad)  # type: ignore[arg-type]
        assert caught.value.problems[0].path == "/settings/connect_timeout"
        assert shown in caught.value.problems[0].message, caught.value.problems[0].message
    with pytest.raises(removebgvideo.ValidationError) as caught:
        client.wait(job.id, poll_policy=PollPolicy(max_hint=-2))
    assert caught.value.problems[0].path == "/arguments/poll_policy/max_hint"


def test_every_method_takes_the_keyword_arguments_the_rust_types_define() -> None:
    # The TypedDicts are generated from the bridge's Rust types: a method that misses one of its
    # operation's arguments, or an operation without a method, fails here.
    from removebgvideo import _params

    for name in _params.__all__:
        if not name.endswith("Params"):
            continue
        params = getattr(_params, name)
        method = "".join("_" + c.lower() if c.isupper() else c for c in name[: -len("Params")]).lstrip("_")
        for owner in (Client, removebgvideo.AsyncClient):
            assert hasattr(owner, method), f"{owner.__name__} has no {method} for {name}"
        taken = set(inspect.signature(getattr(Client, method)).parameters)
        missing = set(params.__annotations__) - taken
        assert not missing, f"Client.{method} does not take {sorted(missing)} ({name})"
    settings = set(_params.ClientSettings.__annotations__)
    assert settings <= set(inspect.signature(Client.__init__).parameters), settings
    assert set(_params.CallOptions.__annotations__) <= set(inspect.signature(Client.create_job).parameters)


def test_download_by_keyword_and_health(sandbox: Sandbox, tmp_path: pathlib.Path) -> None:
    client = fast_client(sandbox)
    assert client.health().status == "ok"
    accepted = client.create_job(VIDEO)
    client.wait(accepted.id)
    done = client.download(job_id=accepted.id, path=tmp_path / "out.webm")
    assert done.bytes == (tmp_path / "out.webm").stat().st_size
    with pytest.raises(removebgvideo.ValidationError) as caught:
        client.download(path=tmp_path / "none.webm")
    assert caught.value.problems[0].path == "/arguments/job_id"
    with pytest.raises(removebgvideo.ValidationError) as caught:
        client.download(accepted.id)
    assert caught.value.problems[0].path == "/arguments/path"
    assert caught.value.problems[0].code == "required"
