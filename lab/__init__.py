"""Lab code: synthesis, real-content datasets, training and evaluation.

Not installed by the wheel: it runs from a checkout (``vqm train``, ``vqm eval``).
"""
