"""The Microsoft Graph calls of the real `az` beyond `graph_api.py`'s app registrations.

- `POST /v1.0/directoryObjects/getByIds`: directory objects by object id. `az role
  assignment create --assignee <object id>` and `az role assignment list` call it to
  learn a principal's type and display name. Only service principals (app
  registrations and managed identities) live in this directory; ids that name nothing
  are left out of the answer, as Graph does.
- `POST /v1.0/servicePrincipals` with `{"appId": …}`: `az ad sp create-for-rbac` and
  `az ad sp create` call it after creating the application. Here an application and
  its service principal are one record, made together, so this answers 201 with the
  service principal that already exists (Graph would create it now).

Same caller rule as the rest of the Graph slice: the instance administrator, with a
token for Graph's audience (which includes this instance's own URL).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from strongroom.errors import BadRequest, NotFound, ServiceError
from strongroom.server import guards
from strongroom.server.graph_api import GRAPH, service_principal_json
from strongroom.server.guards import admin, route, runtime
from strongroom.server.http import JSON, json_object

MAX_IDS = 1000  # Graph's limit per request
MAX_BODY = 64 * 1024  # 1000 GUIDs in JSON are ~40 KB
SP_TYPE = "serviceprincipal"


def _bad(message: str) -> ServiceError:
    return BadRequest("Request_BadRequest", message)


def _strings(body: dict[str, Any], name: str) -> list[str]:
    values = body.get(name)
    if values is None and name == "types":
        return []
    if not isinstance(values, list) or not all(isinstance(v, str) and 0 < len(v) <= 128 for v in values):
        raise _bad(f"Property '{name}' must be an array of strings.")
    return values


async def get_by_ids(request: Request) -> Response:
    rt = runtime(request)
    assert rt.identity is not None
    body = await json_object(request, max_bytes=MAX_BODY)
    ids, types = _strings(body, "ids"), [t.lower().removeprefix("microsoft.graph.") for t in _strings(body, "types")]
    if not ids:
        raise _bad("Property 'ids' must name at least one object.")
    if len(ids) > MAX_IDS:
        raise _bad(f"At most {MAX_IDS} ids may be requested at once.")
    found = []
    if not types or SP_TYPE in types or "directoryobject" in types:
        for ident in dict.fromkeys(i.lower() for i in ids):
            p = rt.directory.find(ident)
            if p is not None and p.object_id.lower() == ident:  # object ids only, as Graph: an appId names nothing here
                found.append({"@odata.type": "#microsoft.graph.servicePrincipal", **service_principal_json(rt, p)})
    return JSON({"@odata.context": f"{GRAPH}/$metadata#directoryObjects", "value": found})


async def create_service_principal(request: Request) -> Response:
    rt = runtime(request)
    assert rt.identity is not None
    body = await json_object(request, max_bytes=MAX_BODY)
    app_id = body.get("appId")
    if not isinstance(app_id, str) or not app_id:
        raise _bad("Property 'appId' is required.")
    app = rt.directory.application(app_id)
    if app is None or app.client_id.lower() != app_id.lower():
        # Not Graph's "does not reference a valid application" wording: az retries on it for three minutes.
        raise NotFound("Request_ResourceNotFound", f"No application with appId '{app_id[:64]}' exists in this directory.")
    return JSON({"@odata.context": f"{GRAPH}/$metadata#servicePrincipals/$entity", **service_principal_json(rt, app)}, status_code=201)


routes = [
    route("/v1.0/directoryObjects/getByIds", get_by_ids, ["POST"], admin("DirectoryObjectGetByIds", audience=guards.GRAPH)),
    route("/v1.0/servicePrincipals", create_service_principal, ["POST"], admin("ServicePrincipalCreate", audience=guards.GRAPH)),
]
