"""Schemathesis against the app's own OpenAPI: no 5xx, and answers match the schema."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from tests.api.conftest import Api

pytestmark = pytest.mark.slow

API = Api(Path(tempfile.mkdtemp(prefix="gridsight-schema-")))
schema = schemathesis.openapi.from_asgi("/openapi.json", API.app)


# What the issue asks: no server error, and every answer documented and shaped as the schema says.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_fails_and_keeps_its_schema(case) -> None:
    case.call_and_validate(headers=API.headers("admin"), checks=CHECKS)
