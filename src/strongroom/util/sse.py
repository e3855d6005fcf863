"""The change feed's wire contract (Server-Sent Events), in one place for both ends.

The server sends it (server/events_api.py) and the agent reads it
(agent/feed_client.py); this module imports nothing, so the agent gets the
constants without the server's storage and barrier layers.
"""

EVENTS_PATH = "/strongroom/events"  # below a vault's URL
MEDIA_TYPE = "text/event-stream"
SEQUENCE_HEADER = "Strongroom-Event-Sequence"  # the feed's position when the stream starts (HTTP headers: any case)
HEARTBEAT = 15.0  # seconds between the server's `:` comments on an idle stream
READ_TIMEOUT = 3 * HEARTBEAT  # a reader that misses three heartbeats treats the connection as dead
