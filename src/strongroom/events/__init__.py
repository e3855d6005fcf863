"""The change feed of vault objects and its Event Grid-shaped events.

`write_with_events` records a change together with its event (`write_with_events_async`
from the event loop); see feed.py.
"""

from strongroom.events.feed import (
    Change,
    FeedEntry,
    ObjectChange,
    last_sequence,
    read,
    write_with_events,
    write_with_events_async,
)

__all__ = ["Change", "FeedEntry", "ObjectChange", "last_sequence", "read", "write_with_events", "write_with_events_async"]
