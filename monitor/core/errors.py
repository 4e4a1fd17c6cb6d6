"""One error hierarchy for every stage: what went wrong, and whether trying again can help.

Every error vqm raises on purpose is a :class:`VqmError`. ``retriable`` says whether the same
operation may succeed later (a broker that is restarting, a receiver that answered 503) or
never will (a config typo, a corrupt model): loops retry the first kind with back-off and
report the second at once. A class sets the default; an instance may say otherwise::

    try:
        await bus.publish(topic, key, value)
    except VqmError as exc:
        if not exc.retriable:
            raise
        ...  # back off and try again

Stage errors keep the built-in base they always had (``ValueError`` for bad input,
``RuntimeError`` for a failed resource), so ``except ValueError`` callers keep working.
"""

from __future__ import annotations


class VqmError(Exception):
    """Base of every error vqm raises on purpose."""

    retriable: bool = False

    def __init__(self, *args: object, retriable: bool | None = None) -> None:
        super().__init__(*args)
        if retriable is not None:
            self.retriable = retriable


class ConfigError(VqmError, ValueError):
    """A config file that does not validate; the message names file, line and key."""


class MessageError(VqmError, ValueError):
    """Bytes that are not a valid message of the expected type."""


class BusError(VqmError):
    """A bus operation failed; ``retriable`` says whether trying again can help."""

    retriable = True


class StateError(VqmError):
    """The state store could not be reached or answered wrongly; retriable."""

    retriable = True
