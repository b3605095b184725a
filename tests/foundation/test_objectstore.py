"""The S3 clients of kernel.objectstore: what they put on the wire (captured before sending, no store)."""

from __future__ import annotations

from typing import Any

from botocore.awsrequest import AWSResponse

from kernel.objectstore import EXPECT_CONTINUE_FROM, make_s3_client


class _NoBody:
    def stream(self, **_kwargs: Any):
        return iter(())


def _sent_headers(body: bytes) -> dict[str, str]:
    """The headers of one PutObject as the client would send them (answered 200 without a network)."""
    client = make_s3_client("http://127.0.0.1:9", "key", "secret")
    sent: dict[str, str] = {}

    def capture(request: Any, **_kwargs: Any) -> AWSResponse:
        sent.update({k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()})
        return AWSResponse(request.url, 200, {}, _NoBody())

    client.meta.events.register("before-send.s3.PutObject", capture)
    client.put_object(Bucket="b", Key="k", Body=body, IfNoneMatch="*")
    return sent


def test_a_small_body_is_sent_at_once_without_waiting_for_100_continue() -> None:
    headers = _sent_headers(b"x" * 50_000)
    assert "Expect" not in headers
    assert headers["If-None-Match"] == "*"  # the precondition still travels, signed
    assert "Expect" not in headers["Authorization"] and "if-none-match" in headers["Authorization"]


def test_a_large_body_still_asks_the_store_before_sending_it() -> None:
    assert _sent_headers(b"x" * (EXPECT_CONTINUE_FROM + 1))["Expect"] == "100-continue"
