"""Which URLs an origin may send ingest to: the URL policy of one channel.

A playlist is input from outside: a broken packager, a misconfigured CDN or an attacker can
list any URI in it. Before ingest fetches a variant, segment, init section or key (and before
it follows a redirect), the channel's :class:`UrlPolicy` checks the URL:

* only ``http`` and ``https`` (a source's own schemes come with its policy); never ``file:``
  or a bare path: an origin cannot make vqm read local files; never ``udp``, ``rtp`` or
  ``srt``: those are channel URLs an operator configures, never URIs an origin lists;
* the host must be the configured playlist's own, or match the channel's ``allow_hosts``;
* link-local addresses and cloud metadata endpoints are refused unless ``allow_hosts`` names
  them, whatever else is allowed.

A local playlist given on the command line (``vqm scan PATH``) has a policy of its own
(:meth:`UrlPolicy.local_file`): it may name regular local files, and http(s) URLs on any host
but link-local and metadata ones::

    policy = UrlPolicy.for_channel(channel.url, channel.allow_hosts)
    policy.check("https://evil.example/x.ts")   # UrlRefused naming the host and the rule
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from monitor.core.errors import VqmError

HTTP_SCHEMES = frozenset({"http", "https"})
# Cloud metadata services answer on these names and addresses; an origin must not be able to
# point ingest at them (the credentials of the machine vqm runs on live there).
METADATA_HOSTS = frozenset(
    {"metadata.google.internal", "metadata", "169.254.169.254", "fd00:ec2::254", "100.100.100.200"}
)


class UrlRefused(VqmError, ValueError):
    """A URL the channel's policy does not allow; the message says which rule refused it."""


def is_local_scheme(url: str) -> bool:
    """A ``file:`` URL or a bare path (a one-letter scheme is a Windows drive)."""
    scheme = urlsplit(url).scheme.lower()
    return scheme == "file" or len(scheme) <= 1


def _special(host: str) -> bool:
    """Link-local or a metadata endpoint."""
    if host in METADATA_HOSTS:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_link_local


@dataclass(frozen=True)
class UrlPolicy:
    """Where one channel's playlists may send ingest; see the module docstring."""

    home_host: str | None
    allow_hosts: tuple[str, ...] = ()
    schemes: frozenset[str] = HTTP_SCHEMES
    local_files: bool = False  # a playlist named on the command line: local files allowed

    @classmethod
    def for_channel(cls, url: str, allow_hosts: Iterable[str] = ()) -> UrlPolicy:
        return cls(_host(url), tuple(h.lower() for h in allow_hosts))

    @classmethod
    def local_file(cls) -> UrlPolicy:
        return cls(None, local_files=True)

    def check(self, url: str) -> None:
        """Return if ``url`` may be fetched; raise :class:`UrlRefused` saying why not."""
        if is_local_scheme(url):
            if self.local_files:
                return
            raise UrlRefused(f"local file {url!r}: an origin may not name local files")
        scheme = urlsplit(url).scheme.lower()
        if scheme not in self.schemes:
            allowed = ", ".join(sorted(self.schemes))
            raise UrlRefused(f"scheme {scheme!r} is not allowed (only {allowed})")
        host = _host(url)
        if host is None:
            raise UrlRefused(f"{scheme} URL without a host")
        # The configured playlist's own host is trusted even when it is link-local (a box on the
        # plant network): the operator chose it, not the origin.
        if host == self.home_host or self._listed(host):
            return
        if _special(host):
            raise UrlRefused(f"host {host!r} is link-local or a metadata endpoint")
        if self.home_host is None and self.local_files:
            return  # a local playlist may name any ordinary host
        raise UrlRefused(
            f"host {host!r} is neither the playlist's host ({self.home_host!r}) nor in the "
            "channel's allow_hosts"
        )

    def _listed(self, host: str) -> bool:
        return any(fnmatch.fnmatchcase(host, pattern) for pattern in self.allow_hosts)


def _host(url: str) -> str | None:
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.lower() if host else None
