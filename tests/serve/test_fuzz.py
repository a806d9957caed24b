"""Schema fuzzing with schemathesis against the service's published OpenAPI document: whatever
the generated request, the answer is never a 5xx and always matches the documented schema."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.serve.conftest import Server


def test_no_server_errors(server: Server) -> None:
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance

    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    tested = []
    for result in schema.get_all_operations():
        operation = result.ok()

        # most cases name a served model, so the fuzz reaches the models and not only the 404
        @given(case=operation.as_strategy(), name=st.sampled_from(["als", "ials", "pop", None]))
        @settings(max_examples=25, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case, name) -> None:  # type: ignore[no-untyped-def]
            if name is not None and case.path_parameters and "name" in case.path_parameters:
                case.path_parameters["name"] = name
            case.call_and_validate(base_url=server.url,
                                   checks=[not_a_server_error, response_schema_conformance])

        fuzz()
        tested.append(operation.label)
    assert "GET /v1/models/{name}/recommend" in tested
    assert "POST /v1/models/{name}/recommend-for-history" in tested
    assert len(tested) >= 12
