"""Which exceptions mean "an AWS dependency failed" (retryable: the API answers 503) rather than a bug (500)."""

from __future__ import annotations


def is_dependency_failure(exc: BaseException) -> bool:
    # Imported here, not at module import: these are loaded anyway by the time an AWS call has failed.
    from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyPersistenceLayerError
    from botocore.exceptions import BotoCoreError, ClientError
    from pynamodb.exceptions import PynamoDBException

    return isinstance(exc, (ClientError, BotoCoreError, PynamoDBException, IdempotencyPersistenceLayerError))
