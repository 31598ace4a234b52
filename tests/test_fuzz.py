"""Issue 13: property-based API tests from the app's own OpenAPI document.

Schemathesis generates requests, valid and not, for every operation and checks
each answer: never a server error, a status code the document declares, a body
that matches the declared schema. Admin endpoints run without a token here (their
401/403 answers are checked; uploads are fuzzed through their validators in
test_hostile.py). Derandomised: the same examples every run.
"""

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import checks

from karabakh_qa.errors import whole_number
from karabakh_qa.web import create_app

pytestmark = pytest.mark.filterwarnings("ignore")


OPERATIONS = [
    result.ok().label
    for result in schemathesis.openapi.from_path(
        str(Path(__file__).parents[1] / "web" / "static" / "openapi.json")
    ).get_all_operations()
    if result.ok().label != "GET /api/openapi.json"  # schemathesis leaves out the schema itself
]
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.response_schema_conformance,
    checks.content_type_conformance,
]


@pytest.mark.parametrize("label", OPERATIONS)
def test_api_answers_every_request_as_documented(seed_settings, seed_service, label):
    app = create_app(seed_settings, service=seed_service)
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    operation = next(r.ok() for r in schema.get_all_operations() if r.ok().label == label)

    @given(st.data())
    @settings(
        max_examples=40,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def answers(data):
        case = data.draw(operation.as_strategy())
        case.call_and_validate(checks=CHECKS)

    answers()


@given(st.text(max_size=12))
@settings(max_examples=300, derandomize=True, database=None)
def test_whole_number_accepts_ascii_digits_only(text):
    parsed = whole_number(text)
    stripped = text.strip()
    if stripped and all("0" <= c <= "9" for c in stripped) and len(stripped) <= 9:
        assert parsed == int(stripped)
    else:
        assert parsed is None


@given(st.one_of(st.integers(), st.floats(allow_nan=True), st.booleans(), st.none()))
@settings(max_examples=300, derandomize=True, database=None)
def test_whole_number_of_json_values(value):
    parsed = whole_number(value)
    if isinstance(value, bool) or value is None:
        assert parsed is None
    elif isinstance(value, int):
        assert parsed == value
    elif value == value and value not in (float("inf"), float("-inf")) and value.is_integer():
        assert parsed == int(value)
    else:
        assert parsed is None
