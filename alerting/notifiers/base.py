"""What every notifier shares: the interface, the error that says whether to retry, HTTP posting.

A notifier turns one :class:`AlertEvent` into one request to one receiver. It does not retry:
the outbox does, so retries survive restarts and back off per entry. A notifier's only job
besides formatting is to say, through :class:`NotifierError`, whether trying again can help.

    class TeamsConfig(NotifierConfig):
        type: Literal["teams"] = "teams"

    @register                                   # alerting.notifiers.registry
    class TeamsNotifier(HttpNotifier):
        key = "teams"
        config_class = TeamsConfig
        async def send(self, event: AlertEvent) -> None:
            await self.post(self.url, json={"text": event.alert.summary})

A notifier is built as ``cls(name, config, client, links=links)``: its name in the
notification config, its validated config, the one HTTP client every notifier of the process
shares, and the :class:`~alerting.links.PageLinks` pages carry (None without a public URL).
"""

from __future__ import annotations

import abc
import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any, ClassVar

import httpx
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from alerting.links import PageLinks
from alerting.models import AlertEvent
from monitor.core.errors import VqmError
from monitor.core.redact import redact, redact_url
from monitor.core.retry import parse_retry_after

logger = logging.getLogger(__name__)

# Statuses where the receiver may accept the same request later.
_RETRIABLE_STATUS = {408, 425, 429}
# Statuses whose Retry-After says when to come back (RFC 9110 for 503, RFC 6585 for 429).
_RETRY_AFTER_STATUS = {429, 503}


class NotifierError(VqmError):
    """A receiver did not accept an event.

    ``retriable`` is True when the same request may succeed later (connection refused,
    timeout, 5xx, 429) and False when it never will (bad key, malformed payload).
    ``retry_after`` is the seconds a receiver's 429 or 503 asked to wait (its ``Retry-After``);
    the outbox waits at least that long, up to its ``retry_after_max``.
    """

    def __init__(
        self,
        message: str,
        *,
        retriable: bool,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, retriable=retriable)
        self.status = status
        self.retry_after = retry_after


class NotifierConfig(BaseModel):
    """Settings every HTTP notifier has; a plugin adds ``type: Literal[<its key>]``."""

    model_config = ConfigDict(extra="forbid")

    type: str

    url: AnyHttpUrl = Field(
        description="Receiver URL; Alertmanager and PagerDuty add their API path to it."
    )
    timeout: float = Field(default=5.0, gt=0, le=60, description="Seconds per request.")


class Notifier(abc.ABC):
    """Sends alert transitions to one receiver; ``name`` is its key in the notification config.

    Plugins set ``key`` (the config's ``type``) and ``config_class``.
    """

    key: ClassVar[str]
    config_class: ClassVar[type[BaseModel]]
    # A receiver that forgets what it was sent (Alertmanager keeps alerts in memory) sets
    # these, and the resender (``alerting.resend``) re-asserts open alerts through
    # :meth:`resend` every ``resend_interval`` seconds, and resolves for ``resolved_retention``.
    resend_interval: float | None = None
    resolved_retention: float = 0.0

    def __init__(self, name: str) -> None:
        self.name = name

    async def resend(self, events: list[AlertEvent]) -> None:
        """Deliver the current state of several alerts at once (see ``resend_interval``)."""
        raise NotImplementedError(f"{type(self).__name__} does not re-send")

    @abc.abstractmethod
    async def send(self, event: AlertEvent) -> None:
        """Deliver one event; return only when the receiver accepted it (2xx).

        Raises :class:`NotifierError` otherwise.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class HttpNotifier(Notifier):
    """A notifier that POSTs through the one shared ``httpx.AsyncClient``."""

    def __init__(
        self,
        name: str,
        config: NotifierConfig,
        client: httpx.AsyncClient,
        clock: Callable[[], float] = time.time,
        links: PageLinks | None = None,
    ) -> None:
        super().__init__(name)
        self.config = config
        self.clock = clock  # wall clock for timestamps in payloads; injectable for tests
        self.url = str(config.url).rstrip("/")
        self.timeout = config.timeout
        self.client = client
        self.links = links  # None: the page carries no links (no public URL configured)

    async def post(
        self,
        url: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST and return the 2xx response; anything else becomes a :class:`NotifierError`."""
        return await self.request("POST", url, json=json, content=content, headers=headers)

    async def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """Any method (Grafana looks up and patches); errors as :meth:`post` has them."""
        try:
            response = await self.client.request(
                method,
                url,
                json=json,
                content=content,
                headers=headers,
                params=params,
                timeout=self.timeout,
            )
        except httpx.TimeoutException as exc:
            raise NotifierError(
                f"{self.name}: no answer from {redact_url(url)} within {self.timeout}s",
                retriable=True,
            ) from exc
        except httpx.TransportError as exc:
            raise NotifierError(
                f"{self.name}: cannot reach {redact_url(url)}: {redact(repr(exc))}",
                retriable=True,
            ) from exc
        check_status(self.name, url, response)
        return response


def check_status(name: str, url: str, response: httpx.Response) -> None:
    """Raise unless 2xx; 5xx, 408, 425 and 429 are retriable, other statuses are not.

    A 429 or 503 passes on its ``Retry-After`` (seconds or an HTTP-date) as ``retry_after``.
    """
    status = response.status_code
    if 200 <= status < 300:
        return
    retriable = status >= 500 or status in _RETRIABLE_STATUS
    retry_after = None
    if status in _RETRY_AFTER_STATUS:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
    body = response.text[:200].strip()
    raise NotifierError(
        f"{name}: {redact_url(url)} answered {status}: {body or response.reason_phrase}",
        retriable=retriable,
        status=status,
        retry_after=retry_after,
    )


def rfc3339(epoch_seconds: float) -> str:
    """``2024-05-01T12:00:00.250Z``: the form Alertmanager, PagerDuty and people all read."""
    moment = dt.datetime.fromtimestamp(epoch_seconds, tz=dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
