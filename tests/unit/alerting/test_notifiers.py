"""Notifier payloads, signatures, failure classes and routing, against a real local receiver."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from alerting.models import AlertEvent
from alerting.notifiers import NotificationConfig, NotifierError, build_notifiers, verify_signature
from alerting.notifiers.alertmanager import AlertmanagerConfig, AlertmanagerNotifier
from alerting.notifiers.base import rfc3339
from alerting.notifiers.pagerduty import PagerDutyConfig, PagerDutyNotifier
from alerting.notifiers.slack import SlackConfig, SlackNotifier
from alerting.notifiers.webhook import WebhookConfig, WebhookNotifier
from tests.conftest import free_port
from tests.receiver import Receiver
from tests.unit.alerting.pages import (
    OPENED_AT,
    WALL,
    make_alert,
    opened,
    page_links,
    resolved,
    with_picture,
)

SECRET = "s3cret-shared-with-the-receiver"


def mock_client(handler: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))  # type: ignore[arg-type]


# --- Alertmanager ---------------------------------------------------------------------------


async def test_alertmanager_receives_labels_annotations_and_open_ended_firing_alert(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    config = AlertmanagerConfig(url=receiver.url, firing_timeout=3600)
    notifier = AlertmanagerNotifier("am", config, client, clock=lambda: OPENED_AT + 5)
    await notifier.send(opened(make_alert(label="hum", detector="audio_artifact")))
    [request] = receiver.accepted
    assert (request.method, request.path) == ("POST", "/api/v2/alerts")
    [alert] = request.json()
    assert alert["labels"] == {
        "alertname": "VqmAudioArtifact",
        "channel": "news",
        "detector": "audio_artifact",
        "severity": "critical",
        "label": "hum",
        "alert_id": "news:black:1",
    }
    assert alert["annotations"]["summary"] == "Black picture"
    assert alert["startsAt"] == "2024-05-01T12:00:00.000Z"
    assert alert["endsAt"] == "2024-05-01T13:00:05.000Z"


async def test_alertmanager_resolve_sets_ends_at_to_the_resolve_time(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    notifier = AlertmanagerNotifier("am", AlertmanagerConfig(url=receiver.url), client)
    await notifier.send(resolved())
    [alert] = receiver.accepted[0].json()
    assert alert["endsAt"] == "2024-05-01T12:01:20.500Z"
    assert "label" not in alert["labels"]


async def test_alertmanager_firing_alerts_are_valid_for_four_resend_intervals(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    config = AlertmanagerConfig(url=receiver.url, resend_interval=30)
    notifier = AlertmanagerNotifier("am", config, client, clock=lambda: OPENED_AT + 5)
    await notifier.send(opened())
    [alert] = receiver.accepted[0].json()
    assert alert["endsAt"] == rfc3339(OPENED_AT + 5 + 4 * 30)


async def test_alertmanager_sends_to_every_member_of_an_ha_list(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    second = Receiver()
    await second.start()
    try:
        config = AlertmanagerConfig(urls=[receiver.url, second.url])
        await AlertmanagerNotifier("am", config, client).send(opened())
    finally:
        await second.stop()
    for member in (receiver, second):
        [request] = member.accepted
        assert request.path == "/api/v2/alerts"


async def test_alertmanager_one_member_taking_the_alert_is_enough(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    notifier = AlertmanagerNotifier("am", AlertmanagerConfig(urls=[down, receiver.url]), client)
    await notifier.send(opened())
    assert len(receiver.accepted) == 1


async def test_alertmanager_every_member_down_is_a_retriable_failure(
    client: httpx.AsyncClient,
) -> None:
    urls = [f"http://127.0.0.1:{free_port()}" for _ in range(2)]
    notifier = AlertmanagerNotifier("am", AlertmanagerConfig(urls=urls), client)
    with pytest.raises(NotifierError, match="cannot reach") as err:
        await notifier.send(opened())
    assert err.value.retriable is True


@pytest.mark.parametrize(
    ("second_answer", "retry_after"), [((503, {"Retry-After": "60"}), 20.0), (503, None)]
)
async def test_alertmanager_members_all_throttling_retry_when_the_soonest_asked(
    receiver: Receiver,
    client: httpx.AsyncClient,
    second_answer: int | tuple[int, dict[str, str]],
    retry_after: float | None,
) -> None:
    """The cluster can take the alert once any member can; one without a Retry-After may be
    back at any moment, so then the plain back-off applies."""
    second = Receiver(statuses=[second_answer])
    await second.start()
    receiver.statuses = [(429, {"Retry-After": "20"})]
    try:
        config = AlertmanagerConfig(urls=[receiver.url, second.url])
        with pytest.raises(NotifierError) as err:
            await AlertmanagerNotifier("am", config, client).send(opened())
    finally:
        await second.stop()
    assert err.value.retriable is True and err.value.retry_after == retry_after


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"url": "http://a:9093", "urls": ["http://b:9093"]}, "not both"),
        ({"urls": []}, "one of them"),
        ({"url": "http://a:9093", "resend_interval": 60, "firing_timeout": 60}, "must exceed"),
    ],
    ids=["url and urls", "no receiver", "firing_timeout within one resend"],
)
def test_alertmanager_config_refuses_what_cannot_work(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        AlertmanagerConfig.model_validate(fields)


def test_alertmanager_single_url_form_is_one_member() -> None:
    config = AlertmanagerConfig.model_validate({"url": "http://am:9093/"})
    assert config.endpoints == ["http://am:9093"]


# --- PagerDuty ------------------------------------------------------------------------------


async def test_pagerduty_trigger_then_resolve_share_the_dedup_key(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    config = PagerDutyConfig(url=receiver.url, routing_key="R0UTING")
    notifier = PagerDutyNotifier("oncall", config, client)
    await notifier.send(opened())
    await notifier.send(resolved())
    trigger, resolve = (r.json() for r in receiver.accepted)
    assert all(r.path == "/v2/enqueue" for r in receiver.accepted)
    assert trigger["event_action"] == "trigger"
    assert resolve["event_action"] == "resolve"
    assert trigger["dedup_key"] == resolve["dedup_key"] == "news:black:1"
    assert trigger["routing_key"] == resolve["routing_key"] == "R0UTING"
    payload = trigger["payload"]
    assert payload["summary"] == "Black picture"
    assert payload["source"] == "news"
    assert payload["severity"] == "critical"
    assert payload["custom_details"]["detector"] == "black"


@pytest.mark.parametrize(
    ("severity", "expected"),
    [("critical", "critical"), ("major", "error"), ("minor", "warning"), ("info", "info")],
)
def test_pagerduty_severity_is_mapped_to_the_four_it_knows(severity: str, expected: str) -> None:
    config = PagerDutyConfig(routing_key="k")
    notifier = PagerDutyNotifier("pd", config, httpx.AsyncClient())
    body = notifier.payload(opened(make_alert(severity=severity)))
    assert body["payload"]["severity"] == expected


async def test_pagerduty_trigger_carries_the_picture_and_the_wall_link(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    config = PagerDutyConfig(url=receiver.url, routing_key="R0UTING")
    notifier = PagerDutyNotifier("oncall", config, client, links=page_links())
    await notifier.send(opened(with_picture()))
    await notifier.send(resolved(with_picture()))
    trigger, resolve = (r.json() for r in receiver.accepted)
    assert trigger["client"] == "vqm"
    assert trigger["client_url"] == resolve["client_url"] == WALL
    assert trigger["links"] == [{"href": WALL, "text": "Channel on the vqm wall"}]
    [image] = trigger["images"]
    assert image["src"].startswith("https://vqm.example/noc/links/channels/news/alerts/")
    assert "signature=" in image["src"] and "expires=" in image["src"]
    assert (image["href"], image["alt"]) == (WALL, "news when the alert opened")
    assert "images" not in resolve and "links" not in resolve


def test_pagerduty_gets_no_image_over_plain_http_nor_any_link_without_a_public_url() -> None:
    config = PagerDutyConfig(routing_key="k", client_url="https://wiki.example/runbook")
    plain = PagerDutyNotifier(
        "pd", config, httpx.AsyncClient(), links=page_links(public_url="http://vqm")
    )
    body = plain.payload(opened(with_picture()))
    assert "images" not in body and body["links"][0]["href"] == "http://vqm/#channel=news"
    assert body["client_url"] == "https://wiki.example/runbook"  # the configured one wins
    unlinked = PagerDutyNotifier("pd", PagerDutyConfig(routing_key="k"), httpx.AsyncClient())
    body = unlinked.payload(opened(with_picture()))
    assert not {"images", "links", "client_url"} & set(body)


def test_pagerduty_routing_key_is_not_shown_in_the_config_repr() -> None:
    assert "R0UTING" not in repr(PagerDutyConfig(routing_key="R0UTING"))


# --- webhook --------------------------------------------------------------------------------


async def test_webhook_signature_verifies_with_the_secret_and_fails_with_another(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    notifier = WebhookNotifier(
        "hook",
        WebhookConfig(url=f"{receiver.url}/hooks/vqm", secret=SECRET),
        client,
        clock=lambda: 1_714_564_900,
    )
    await notifier.send(opened())
    [request] = receiver.accepted
    assert request.path == "/hooks/vqm"
    signature = request.headers["x-vqm-signature"]
    assert signature.startswith("sha256=")
    assert verify_signature(request.body, SECRET, signature)
    assert not verify_signature(request.body, "another-secret-of-some-length", signature)
    assert not verify_signature(request.body + b" ", SECRET, signature)
    assert request.headers["x-vqm-timestamp"] == "1714564900"
    assert request.headers["x-vqm-delivery"] == "news:black:1:opened"
    assert AlertEvent.model_validate_json(request.body) == opened()


def test_webhook_refuses_a_short_secret() -> None:
    with pytest.raises(ValidationError, match="secret"):
        WebhookConfig(url="http://x", secret="short")


# --- Slack ----------------------------------------------------------------------------------


async def test_slack_gets_a_readable_line_for_open_and_resolve(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    notifier = SlackNotifier("ops", SlackConfig(url=f"{receiver.url}/services/T/B/X"), client)
    await notifier.send(opened(make_alert(summary="Black <picture> & more")))
    await notifier.send(resolved())
    open_text, resolve_text = (r.json()["text"] for r in receiver.accepted)
    assert open_text.startswith(":red_circle: *black* on *news* [critical]")
    assert "Black &lt;picture&gt; &amp; more" in open_text
    assert "since 12:00:00 UTC" in open_text
    assert resolve_text == ":white_check_mark: Resolved: *black* on *news* after 1m 20s"


async def test_slack_blocks_show_the_facts_the_picture_and_a_button_to_the_wall(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    config = SlackConfig(url=f"{receiver.url}/services/T/B/X")
    notifier = SlackNotifier("ops", config, client, links=page_links())
    await notifier.send(opened(with_picture(make_alert(offset_ms=240.0))))
    await notifier.send(resolved(with_picture()))
    opening, resolve = (r.json() for r in receiver.accepted)
    assert opening["text"].startswith(":red_circle: *black* on *news* [critical]")  # fallback
    kinds = [b["type"] for b in opening["blocks"]]
    assert kinds == ["header", "section", "image", "actions", "context"]
    header, section, image, actions, _ = opening["blocks"]
    assert header["text"] == {
        "type": "plain_text",
        "text": ":red_circle: black on news",
        "emoji": True,
    }
    assert section["text"]["text"] == "Black picture"
    fields = [f["text"] for f in section["fields"]]
    assert fields == [
        "*Severity*\ncritical",
        "*Since*\n12:00:00 UTC",
        "*Confidence*\n0.99",
        "*Audio offset*\n+240 ms",
    ]
    assert image["image_url"].startswith("https://vqm.example/noc/links/channels/news/alerts/")
    assert image["alt_text"] == "news when the alert opened"
    [button] = actions["elements"]
    assert (button["type"], button["url"]) == ("button", WALL)
    assert resolve["text"].startswith(":white_check_mark: Resolved")
    assert [b["type"] for b in resolve["blocks"]] == ["header", "section", "actions", "context"]
    assert "*Lasted*\n1m 20s" in [f["text"] for f in resolve["blocks"][1]["fields"]]


async def test_slack_that_refuses_the_picture_gets_the_page_without_it(
    receiver: Receiver, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.statuses = [400]  # Slack could not fetch the image: invalid_blocks
    config = SlackConfig(url=f"{receiver.url}/services/T/B/X")
    notifier = SlackNotifier("ops", config, client, links=page_links())
    await notifier.send(opened(with_picture()))
    first, second = receiver.requests
    assert "image" in [b["type"] for b in first.json()["blocks"]]
    assert receiver.accepted == [second]
    assert "image" not in [b["type"] for b in second.json()["blocks"]]
    assert "without" in caplog.text and "/services/T/B/X" not in caplog.text


async def test_slack_without_links_has_no_picture_and_no_button(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    notifier = SlackNotifier("ops", SlackConfig(url=receiver.url), client)
    await notifier.send(opened(with_picture()))
    kinds = [b["type"] for b in receiver.accepted[0].json()["blocks"]]
    assert kinds == ["header", "section", "context"]


async def test_alertmanager_links_back_to_the_wall_unless_told_otherwise(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    links = page_links()
    await AlertmanagerNotifier(
        "am", AlertmanagerConfig(url=receiver.url), client, links=links
    ).send(opened())
    templated = AlertmanagerConfig(url=receiver.url, generator_url="https://x/{channel}/{id}")
    await AlertmanagerNotifier("am", templated, client, links=links).send(opened())
    default, configured = (r.json()[0]["generatorURL"] for r in receiver.accepted)
    assert default == WALL
    assert configured == "https://x/news/news:black:1"


# --- failures -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retriable"), [(503, True), (500, True), (429, True), (400, False), (403, False)]
)
async def test_a_non_2xx_answer_raises_saying_whether_to_retry(
    receiver: Receiver, client: httpx.AsyncClient, status: int, retriable: bool
) -> None:
    receiver.statuses = [status]
    notifier = PagerDutyNotifier("pd", PagerDutyConfig(url=receiver.url, routing_key="k"), client)
    with pytest.raises(NotifierError, match=f"answered {status}") as caught:
        await notifier.send(opened())
    assert caught.value.retriable is retriable
    assert caught.value.status == status


@pytest.mark.parametrize(
    ("status", "header", "retry_after"),
    [(503, "120", 120.0), (429, "0", 0.0), (503, "whenever", None), (500, "120", None)],
)
async def test_a_429_or_503_carries_the_receivers_retry_after_in_seconds(
    receiver: Receiver,
    client: httpx.AsyncClient,
    status: int,
    header: str,
    retry_after: float | None,
) -> None:
    receiver.statuses = [(status, {"Retry-After": header})]
    notifier = PagerDutyNotifier("pd", PagerDutyConfig(url=receiver.url, routing_key="k"), client)
    with pytest.raises(NotifierError) as caught:
        await notifier.send(opened())
    assert caught.value.retriable and caught.value.retry_after == retry_after


async def test_a_refused_connection_is_retriable(client: httpx.AsyncClient) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    notifier = SlackNotifier("ops", SlackConfig(url=url), client)
    with pytest.raises(NotifierError, match="cannot reach") as caught:
        await notifier.send(opened())
    assert caught.value.retriable


async def test_a_timeout_is_retriable_and_uses_the_configured_limit() -> None:
    seen: list[object] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        raise httpx.ReadTimeout("slow", request=request)

    async with mock_client(handler) as client:
        notifier = SlackNotifier("ops", SlackConfig(url="http://slack", timeout=1.5), client)
        with pytest.raises(NotifierError, match="within 1.5s") as caught:
            await notifier.send(opened())
    assert caught.value.retriable
    assert seen == [{"connect": 1.5, "read": 1.5, "write": 1.5, "pool": 1.5}]


def test_rfc3339_is_utc_with_milliseconds() -> None:
    assert rfc3339(0.25) == "1970-01-01T00:00:00.250Z"


# --- config and routing ---------------------------------------------------------------------


def notification_config() -> NotificationConfig:
    return NotificationConfig.model_validate(
        {
            "notifiers": {
                "oncall": {"type": "pagerduty", "routing_key": "k"},
                "am": {"type": "alertmanager", "url": "http://alertmanager:9093"},
                "ops": {"type": "slack", "url": "https://hooks.slack.com/services/T/B/X"},
            },
            "routes": [
                {"severities": ["critical"], "notifiers": ["oncall", "am"]},
                {"severities": ["critical", "major", "warning"], "notifiers": ["am", "ops"]},
            ],
        }
    )


def test_routes_send_each_severity_to_its_notifiers_once_each() -> None:
    router = build_notifiers(notification_config(), httpx.AsyncClient())
    critical = opened(make_alert(severity="critical"))
    assert router.targets(critical) == ["oncall", "am", "ops"]
    assert router.targets(opened(make_alert(severity="warning"))) == ["am", "ops"]
    assert router.targets(opened(make_alert(severity="info"))) == []
    assert isinstance(router.get("oncall"), PagerDutyNotifier)
    assert router.get("nobody") is None


def test_a_route_to_an_unknown_notifier_is_an_error_naming_it() -> None:
    with pytest.raises(ValidationError, match=r"unknown notifier 'pager'; known: am"):
        NotificationConfig.model_validate(
            {
                "notifiers": {"am": {"type": "alertmanager", "url": "http://am:9093"}},
                "routes": [{"severities": ["critical"], "notifiers": ["pager"]}],
            }
        )


@pytest.mark.parametrize(
    "notifier",
    [
        {"type": "slack", "url": "http://x", "channel": "#ops"},
        {"type": "carrier_pigeon", "url": "http://x"},
        {"type": "alertmanager"},
    ],
    ids=["unknown key", "unknown type", "missing url"],
)
def test_notifier_configs_are_strict(notifier: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        NotificationConfig.model_validate({"notifiers": {"x": notifier}})
