"""The shared HTTP policy: redaction and the retry schedule."""

from __future__ import annotations

import pytest

from pipelines.http import RetryPolicy, redact


def test_redact_presigned_url_and_secrets() -> None:
    url = (
        "https://h/x.parquet?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F2026&"
        "X-Amz-Date=20261121T000000Z&X-Amz-Expires=300&X-Amz-Signature=abc123"
    )
    out = redact(url + " key=sk-123456", secrets=["sk-123456"])
    assert "AKIA" not in out and "abc123" not in out and "sk-123456" not in out
    assert "X-Amz-Expires=300" in out  # what is not secret stays readable
    assert "X-Amz-Signature=REDACTED" in out and "X-Amz-Credential=REDACTED" in out


def test_retry_after_wins_but_is_capped() -> None:
    policy = RetryPolicy(backoff_base=0.5, max_delay=10.0)
    assert policy.delay(0, "3") == 3.0
    assert policy.delay(0, "600") == 10.0
    # without Retry-After: exponential from backoff_base, with up to 25 % jitter
    assert 0.5 <= policy.delay(0, None) <= 0.625
    assert 2.0 <= policy.delay(2, None) <= 2.5
    assert policy.delay(10, "not-a-number") == pytest.approx(10.0)
