"""Links in pages: the wall link, signed picture links, and the route that serves them only
for a valid, unexpired signature (no bearer token)."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from prometheus_client import CollectorRegistry

from alerting.api import ApiContext, create_app
from alerting.engine import AlertEngine
from alerting.links import LinkSigner, PageLinks, link_key
from alerting.models import Alert
from alerting.store import Thumbnail
from monitor.app.config import ChannelConfig, VqmConfig
from monitor.core.messages import DetectionMessage
from monitor.core.metrics import Metrics
from monitor.core.settings import Settings
from monitor.core.state import MemoryStateStore
from tests.unit.alerting.pages import frozen

TOKEN = "api-token-for-the-link-tests-0123"
CONFIG = VqmConfig(
    channels=[
        ChannelConfig(id="news", url="http://origin/news.m3u8"),
        ChannelConfig(id="sport", url="http://origin/sport.m3u8"),
    ]
)
AT_OPENING = b"\xff\xd8\xff\xe0 the picture when it opened"
LATER = b"\xff\xd8\xff\xe0 a later picture"


def settings(**kw: object) -> Settings:
    given = {"environment": "production", "api_token": TOKEN, "public_url": "http://vqm", **kw}
    return Settings.model_validate(given)


def detection(seq: int, channel_id: str = "news", picture: bytes = AT_OPENING) -> DetectionMessage:
    return frozen(seq, channel_id, picture)


class World:
    def __init__(self) -> None:
        self.state = MemoryStateStore()
        self.metrics = Metrics(CollectorRegistry())
        self.engine = AlertEngine(CONFIG, self.state, self.metrics)

    def api(self, settings: Settings, clock: Callable[[], float] = time.time) -> httpx.AsyncClient:
        ctx = ApiContext(
            config=CONFIG, state=self.state, metrics=self.metrics, settings=settings, clock=clock
        )
        transport = httpx.ASGITransport(app=create_app(ctx))
        return httpx.AsyncClient(transport=transport, base_url="http://vqm")

    async def open_alert(self, msg: DetectionMessage) -> Alert:
        await self.engine.handle_detection(msg)
        [alert] = await self.engine.store.active(msg.channel_id)
        return alert


@pytest.fixture
def world() -> World:
    return World()


def picture_link(alert: Alert, s: Settings, clock: Callable[[], float] = time.time) -> str:
    links = PageLinks.from_settings(s, clock=clock)
    assert links is not None
    url = links.picture(alert)
    assert url is not None
    return url


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return parts._replace(query="&".join(f"{k}={v}" for k, v in query.items())).geturl()


async def test_a_signed_link_serves_the_picture_of_the_opening_without_a_token(
    world: World,
) -> None:
    s = settings(api_read_token_required=True)  # reads under /api need the token
    alert = await world.open_alert(detection(0))
    assert alert.picture is True
    await world.engine.handle_detection(detection(1, picture=LATER))  # the channel moved on
    url = picture_link(alert, s)
    assert url.startswith(f"http://vqm/links/channels/news/alerts/{alert.id}/thumbnail.jpg?")
    async with world.api(s) as api:
        assert (await api.get("/api/channels/news/thumbnail.jpg")).status_code == 401
        response = await api.get(url)
    assert (response.status_code, response.headers["content-type"]) == (200, "image/jpeg")
    assert response.content == AT_OPENING
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_an_expired_link_is_refused(world: World) -> None:
    s = settings(link_ttl=60)
    alert = await world.open_alert(detection(0))
    url = picture_link(alert, s, clock=lambda: 1_000_000.0)
    async with world.api(s, clock=lambda: 1_000_059.0) as api:
        assert (await api.get(url)).status_code == 200
    async with world.api(s, clock=lambda: 1_000_060.0) as api:
        refused = await api.get(url)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda url: with_query(url, signature="A" * 43),
        lambda url: with_query(url, expires=str(int(time.time()) + 10**6)),  # a longer life
        lambda url: with_query(url, expires="1e99"),
        lambda url: url.split("?")[0],  # no signature at all
        lambda url: url.replace("/news/", "/sport/"),  # another channel, same signature
    ],
    ids=["signature", "expiry", "not a number", "unsigned", "wrong channel"],
)
async def test_a_tampered_link_is_refused(world: World, tamper: Callable[[str], str]) -> None:
    s = settings()
    alert = await world.open_alert(detection(0))
    await world.open_alert(detection(0, channel_id="sport"))
    async with world.api(s) as api:
        assert (await api.get(tamper(picture_link(alert, s)))).status_code == 403


async def test_another_alerts_id_under_the_same_signature_is_refused(world: World) -> None:
    s = settings()
    first = await world.open_alert(detection(0))
    second = await world.open_alert(detection(0, channel_id="sport"))
    url = picture_link(first, s).replace(first.id, second.id)
    async with world.api(s) as api:
        assert (await api.get(url)).status_code == 403


async def test_a_link_signed_with_another_key_is_refused(world: World) -> None:
    alert = await world.open_alert(detection(0))
    url = picture_link(alert, settings(link_secret="the-key-links-were-signed-with"))
    async with world.api(settings(link_secret="the-key-the-api-now-checks-with")) as api:
        assert (await api.get(url)).status_code == 403


async def test_without_a_key_nothing_is_signed_and_every_link_is_refused(world: World) -> None:
    s = settings(api_token=None)
    alert = await world.open_alert(detection(0))
    links = PageLinks.from_settings(s)
    assert links is not None and links.signer is None
    assert links.picture(alert) is None
    assert links.wall("news") == "http://vqm/#channel=news"  # the wall needs no key
    forged = LinkSigner(b"some key").sign("news", alert.id, int(time.time()) + 60)
    path = f"/links/channels/news/alerts/{alert.id}/thumbnail.jpg"
    async with world.api(s) as api:
        refused = await api.get(
            path, params={"expires": int(time.time()) + 60, "signature": forged}
        )
    assert refused.status_code == 403


def test_the_signer_refuses_an_empty_key() -> None:
    with pytest.raises(ValueError, match="without a key"):
        LinkSigner(b"")


async def test_an_alert_opened_before_any_picture_links_none_and_serves_404(
    world: World,
) -> None:
    s = settings()
    alert = await world.open_alert(frozen(0))
    assert alert.picture is False
    links = PageLinks.from_settings(s)
    assert links is not None and links.picture(alert) is None
    signer = LinkSigner.from_settings(s)
    assert signer is not None
    expires = int(time.time()) + 60
    path = f"/links/channels/news/alerts/{alert.id}/thumbnail.jpg"
    params = {"expires": expires, "signature": signer.sign("news", alert.id, expires)}
    async with world.api(s) as api:
        assert (await api.get(path, params=params)).status_code == 404


def test_without_a_public_url_pages_carry_no_links() -> None:
    assert PageLinks.from_settings(settings(public_url=None)) is None


def test_the_link_key_is_derived_from_the_token_unless_a_secret_is_set() -> None:
    derived = link_key(settings())
    assert derived and TOKEN.encode() not in derived
    assert link_key(settings(api_token="another-api-token-0123456789")) != derived
    assert link_key(settings(link_secret="a-link-secret-of-16+")) == b"a-link-secret-of-16+"
    assert link_key(settings(api_token=None)) == b""


def test_a_short_link_secret_is_refused_and_never_shown() -> None:
    with pytest.raises(ValueError, match="link_secret"):
        settings(link_secret="short")
    assert "a-link-secret-of-16+" not in repr(settings(link_secret="a-link-secret-of-16+"))


def test_a_public_url_under_a_path_keeps_it() -> None:
    links = PageLinks.from_settings(settings(public_url="https://noc.example/vqm/"))
    assert links is not None
    assert links.wall("news") == "https://noc.example/vqm/#channel=news"


async def test_the_channels_own_thumbnail_route_still_serves_the_newest(world: World) -> None:
    await world.engine.store.put_thumbnail(
        Thumbnail(channel_id="news", jpeg_base64=base64.b64encode(LATER).decode(), seq=1, at=1.0)
    )
    async with world.api(settings()) as api:
        assert (await api.get("/api/channels/news/thumbnail.jpg")).content == LATER
