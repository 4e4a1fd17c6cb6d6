"""Audio-video sync: measuring how far sound has slipped against picture.

Two measurements feed the ``av_sync`` detector, each on one window of decoded media:

- :mod:`monitor.inference.avsync.faces` + :mod:`monitor.inference.avsync.syncnet`: mouths on
  face tracks against speech, scored by a SyncNet-style two-stream model;
- :mod:`monitor.inference.avsync.onsets`: content-agnostic, audio onsets against visual change
  (beep-and-flash test patterns, claps, hard cuts with sound).

Both return a :class:`~monitor.inference.avsync.result.SyncEstimate`; offsets are in milliseconds,
positive when audio lags the picture (the sign ``DefectSpan.offset_ms`` uses).
"""
