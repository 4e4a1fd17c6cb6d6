"""Ingest: follow live channels, check the stream itself, publish segments on the bus.

- :mod:`stream_ingest.sources`: one module per source kind, keyed by URL scheme
  (:mod:`~stream_ingest.sources.hls`: HLS over HTTP(S)); the registry picks one per channel.
- :mod:`stream_ingest.playlist`: RFC 8216 playlist parsing (pure, no I/O).
- :mod:`stream_ingest.fetch`: HTTP (or local file) reads with timeouts, size caps and retries.
- :mod:`stream_ingest.vod`: :func:`~stream_ingest.vod.fetch_vod_segments`, a playlist read once
  for ``vqm scan``.
- :mod:`stream_ingest.service`: :class:`~stream_ingest.service.IngestService`, one source per
  channel, supervised; :mod:`stream_ingest.owned` and :mod:`stream_ingest.leases`: the channels
  this worker holds a lease on, in the distributed mode.
- :mod:`stream_ingest.config`: the ``ingest:`` section of the channels file.
"""
