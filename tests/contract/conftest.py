"""One contract, two stores: every test here runs against the in-memory twin and the DynamoDB store (on moto, in
process, with the tables of infra/resources.yaml), as the Chalice todo sample runs one test case on both its
databases."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from tests.services.harness import FakeClock


@pytest.fixture(scope="session")
def dynamodb_tables():
    """The tables of infra/resources.yaml on moto (mock_aws, no server), bound to the PynamoDB models."""
    from moto import mock_aws

    from local import moto_fixes

    moto_fixes.apply()
    names = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    saved = {k: os.environ.get(k) for k in (*names, "AWS_ENDPOINT_URL")}
    os.environ.update(names)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    with mock_aws():
        import boto3

        from local.resources import LocalStackBuilder

        created = LocalStackBuilder(boto3.Session(region_name="us-east-1"), None, stack_name="contract").create_all()
        yield {logical: ids["Ref"] for logical, ids in created.items()}
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


class _Settings:
    def __init__(self, tables: dict[str, str]):
        self.incidents_table = tables["IncidentsTable"]
        self.timeline_table = tables["TimelineTable"]
        self.pages_table = tables["PagesTable"]
        self.directory_table = tables["DirectoryTable"]
        self.lookups_table = tables["LookupsTable"]
        self.checkins_table = tables["CheckInsTable"]
        self.aws_endpoint_url = None
        self.region = "us-east-1"


@pytest.fixture(params=["memory", "dynamodb"])
def backend(request):
    return request.param


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def store(backend, clock, request):
    if backend == "memory":
        from chalicelib.adapters.memory_store import MemoryIncidentStore

        return MemoryIncidentStore(clock=clock, retention=timedelta(days=180))
    tables = request.getfixturevalue("dynamodb_tables")
    from pynamodb.connection import Connection

    from chalicelib.adapters import models
    from chalicelib.adapters.dynamodb_store import DynamoDBIncidentStore

    models._bound_to = None
    models.bind_models(_Settings(tables))
    return DynamoDBIncidentStore(Connection(region="us-east-1"), clock=clock, retention=timedelta(days=180))


@pytest.fixture()
def directory(backend, request):
    if backend == "memory":
        from chalicelib.adapters.directory import MemoryDirectory

        return MemoryDirectory()
    tables = request.getfixturevalue("dynamodb_tables")
    from pynamodb.connection import Connection

    from chalicelib.adapters import models
    from chalicelib.adapters.directory import DynamoDBDirectory

    models._bound_to = None
    models.bind_models(_Settings(tables))
    return DynamoDBDirectory(Connection(region="us-east-1"))
