"""Evidence uploads go straight from the phone to S3 with a presigned POST: the API never carries the bytes, and the
policy in the POST makes S3 itself refuse other sizes and content types."""

from __future__ import annotations

from chalicelib.adapters.clients import aws_client
from chalicelib.config import settings

UPLOAD_EXPIRES_S = 900


class EvidenceBucket:
    def presigned_upload(self, key: str, content_type: str, size_bytes: int) -> dict:
        bucket = settings().evidence_bucket
        post = aws_client("s3").generate_presigned_post(
            Bucket=bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, size_bytes]],
            ExpiresIn=UPLOAD_EXPIRES_S,
        )
        return {"url": post["url"], "fields": post["fields"], "expires_in": UPLOAD_EXPIRES_S}

    @property
    def configured(self) -> bool:
        return bool(settings().evidence_bucket)
