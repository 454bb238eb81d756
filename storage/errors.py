"""The store's own exceptions: nothing above `storage/` ever sees a peewee or driver error.

Callers catch `StoreUnavailable` for "the database didn't answer" (a server down, a full
disk, a lost connection) and `StoreError` for anything else the database refused.
"""

from __future__ import annotations


class StoreError(Exception):
    """The database refused or failed a request; the message names the driver's error."""


class StoreUnavailable(StoreError):
    """The database could not be reached or used right now; trying later may work."""


class NotFound(StoreError):
    """The row asked for does not exist (an unknown incident id, say)."""
