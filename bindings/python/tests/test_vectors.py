"""The shared vectors of ``schema/vectors/``: the same codes and paths as Rust's, and the
request payloads checked against the committed JSON Schema with the ``jsonschema`` package."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

import removebgvideo

from conftest import REPO, vectors

BUNDLE = json.loads((REPO / "schema" / "removebgvideo.schema.json").read_text())


def schema_errors(type_name: str, body: Any) -> list[str]:
    schema = dict(BUNDLE, **{"$ref": f"#/$defs/{type_name}"})
    validator = jsonschema.Draft202012Validator(schema)
    return [e.message for e in validator.iter_errors(body)]


@pytest.mark.parametrize("vector", vectors("requests.json"), ids=lambda v: v["name"])
def test_request_vectors(vector: Any) -> None:
    problems = removebgvideo.validate_request(vector["type"], vector["body"])
    errors = [{"path": p.path, "code": p.code} for p in problems if p.severity == "error"]
    warnings = [{"path": p.path, "code": p.code} for p in problems if p.severity == "warning"]
    assert errors == vector["errors"]
    assert warnings == vector["warnings"]
    schema_valid = not schema_errors(vector["type"], vector["body"])
    if "schema_disagrees" in vector:
        assert schema_valid != (not errors), "a recorded disagreement must really disagree"
    else:
        assert schema_valid == (not errors), schema_errors(vector["type"], vector["body"])


@pytest.mark.parametrize("vector", vectors("webhooks.json"), ids=lambda v: v["name"])
def test_webhook_vectors(vector: Any) -> None:
    call = lambda: removebgvideo.verify_webhook(  # noqa: E731
        vector["body"].encode(), vector["headers"], vector["secret"], vector["tolerance_s"], now=vector["now_ms"] / 1000
    )
    if "ok" in vector["expect"]:
        verified = call()
        assert (verified.event, verified.data.id, verified.delivery_id) == (
            vector["expect"]["ok"]["event"], vector["expect"]["ok"]["job_id"], vector["expect"]["ok"]["delivery_id"])
    else:
        # A delivery that does not verify raises WebhookVerificationError; a refused secret
        # (a mistake of the caller's) raises ValidationError.
        with pytest.raises(removebgvideo.RemoveBGVideoError) as error:
            call()
        assert error.value.code == vector["expect"]["error"]
        expected = removebgvideo.ValidationError if error.value.code == "validation_error" else removebgvideo.WebhookVerificationError
        assert isinstance(error.value, expected)


@pytest.mark.parametrize("vector", vectors("credits.json"), ids=lambda v: f"{v['model']}-{v['duration_seconds']}")
def test_credit_vectors(vector: Any) -> None:
    if "credits" in vector:
        assert removebgvideo.estimate_credits(vector["model"], vector["duration_seconds"]) == vector["credits"]
    else:
        with pytest.raises(removebgvideo.RemoveBGVideoError) as error:
            removebgvideo.estimate_credits(vector["model"], vector["duration_seconds"])
        assert error.value.code == vector["error"]
