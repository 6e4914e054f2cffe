"""`/openapi.json` and `/docs` (Swagger UI): the API described from the wire contract."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import JSONResponse, Response

from server.openapi import openapi_document
from server.state import get_state
from server.version import VERSION

router = APIRouter()


@router.get("/openapi.json")
async def openapi_json(request: Request) -> Response:
    app = request.app
    document = getattr(app.state, "openapi", None)
    if document is None:  # built once, at the first request: start-up stays quick
        document = openapi_document(app.state.routers, title="pollama", version=VERSION,
                                    keys=bool(get_state(request).settings.api_keys))
        app.state.openapi = document
    return JSONResponse(document)


@router.get("/docs")
async def docs() -> Response:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="pollama API")
