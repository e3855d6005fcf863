"""The provider's one error type: a gRPC status name and a message a person can act on.

Messages name the object and the cause, and end with a hint when there is one.
They never carry a secret value or a token.
"""

from __future__ import annotations

# gRPC status names (grpc.StatusCode members); kept as strings so callers that do
# not speak gRPC (the agent) need not import grpc to classify an error.
INVALID_ARGUMENT = "INVALID_ARGUMENT"
NOT_FOUND = "NOT_FOUND"
PERMISSION_DENIED = "PERMISSION_DENIED"
UNAUTHENTICATED = "UNAUTHENTICATED"
UNAVAILABLE = "UNAVAILABLE"
RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
FAILED_PRECONDITION = "FAILED_PRECONDITION"
INTERNAL = "INTERNAL"


class ProviderError(Exception):
    """A mount failed; `status` is the gRPC status name the driver will see."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    @property
    def retryable(self) -> bool:
        """True when trying again later may succeed without anyone changing anything."""
        return self.status in (UNAVAILABLE, RESOURCE_EXHAUSTED)

    def __str__(self) -> str:
        return self.message


def invalid(message: str) -> ProviderError:
    return ProviderError(INVALID_ARGUMENT, message)
