"""The error tree read back: what a client (the CLI, the agent) makes of each plane's rendering."""

from __future__ import annotations

import json

import pytest

from strongroom.errors import Conflict, Plane, describe, render


@pytest.mark.parametrize("plane", list(Plane))
def test_every_planes_error_reads_back_as_its_message_and_code(plane: Plane):
    err = Conflict("RoleAssignmentExists", "The role assignment already exists.")
    rendered = render(err, plane, request_id="r1", client_request_id=None, challenge=None)
    message, code = describe(rendered.status, json.dumps(rendered.body))
    assert "The role assignment already exists." in message
    assert code is not None and code != ""


def test_a_body_that_is_not_an_error_is_named_by_its_status():
    assert describe(502, "<html>bad gateway</html>") == ("HTTP 502: <html>bad gateway</html>", None)
    assert describe(500, "[]") == ("HTTP 500", None)
    assert describe(500, "x" * 1000)[0] == "HTTP 500: " + "x" * 200
