"""The API against its own OpenAPI document: whatever a client sends that the schema allows,
no answer is a 5xx or breaks the schema it promises."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from alerting.api import ApiContext, create_app
from tests.unit.alerting.test_api_actions import AUTH, CONFIG, World
from tests.unit.alerting.test_api_actions import settings as api_settings

pytestmark = pytest.mark.fuzz

_world = World()
app = create_app(
    ApiContext(config=CONFIG, state=_world.state, metrics=_world.metrics, settings=api_settings())
)
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
@settings(max_examples=25)
def test_no_request_the_schema_allows_gets_a_5xx_or_a_wrong_shape(case: schemathesis.Case) -> None:
    # Every check but "schema-valid data is accepted": a silence of an unconfigured channel is
    # well-formed JSON that the API refuses on purpose (422), by the configuration, which a
    # static schema cannot express.
    case.call_and_validate(headers=AUTH, excluded_checks=[positive_data_acceptance])
