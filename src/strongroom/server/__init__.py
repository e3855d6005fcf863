"""HTTP assembly: app factory, TLS, host routing, middleware, lifecycle. No business rules."""
