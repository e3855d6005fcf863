"""The commit guard, as the layers above the barrier use it (see `strongroom.storage.guard`).

A guard set here is asked before every commit the barrier's store makes in this
context; it lives in storage/ because the backends call it inside their commit.
"""

from strongroom.storage.guard import CommitGuard, CommitRefused, check, check_async, current, reset, use

__all__ = ["CommitGuard", "CommitRefused", "check", "check_async", "current", "reset", "use"]
