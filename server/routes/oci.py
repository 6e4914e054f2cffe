"""`/v2/`: the store served as a read-only OCI registry (POLLAMA_SERVE_REGISTRY=1), so replicas pull from a peer.

Blob answers are 200 with the file, and also carry a `Location` naming the same URL: Ollama's client takes the
blob URL from `Location` (it was written for a registry that redirects to storage) and fails without one, while
other clients ignore the header on a 200.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, Response

from modelstore.repositories import Repositories
from server.errors import OCI_API_VERSION, oci_error
from server.http import json_response
from server.state import get_state

router = APIRouter()
def _repositories(request: Request) -> Repositories:
    return Repositories(get_state(request).store)


@router.api_route("/v2/", methods=["GET", "HEAD"])
async def base() -> Response:
    response = json_response({})
    response.headers.update(OCI_API_VERSION)
    return response


@router.get("/v2/_catalog")
async def catalog(request: Request) -> Response:
    response = json_response({"repositories": _repositories(request).catalog()})
    response.headers.update(OCI_API_VERSION)
    return response


@router.get("/v2/{repository:path}/tags/list")
async def tags(request: Request, repository: str) -> Response:
    names = _repositories(request).tags(repository)
    if not names:
        return oci_error("NAME_UNKNOWN", "repository name not known to registry", 404)
    response = json_response({"name": repository, "tags": sorted(name.tag for name in names)})
    response.headers.update(OCI_API_VERSION)
    return response


@router.api_route("/v2/{repository:path}/manifests/{reference}", methods=["GET", "HEAD"])
async def manifest(request: Request, repository: str, reference: str) -> Response:
    stored = _repositories(request).manifest(repository, reference)
    if stored is None:
        return oci_error("MANIFEST_UNKNOWN", "manifest unknown", 404)
    headers = {**OCI_API_VERSION, "Docker-Content-Digest": stored.digest}
    body = b"" if request.method == "HEAD" else stored.raw
    response = Response(body, media_type=stored.media_type, headers=headers)
    response.headers["content-length"] = str(len(stored.raw))
    return response


@router.api_route("/v2/{repository:path}/blobs/{digest}", methods=["GET", "HEAD"])
async def blob(request: Request, repository: str, digest: str) -> Response:
    path = _repositories(request).blob(repository, digest)
    if path is None:
        return oci_error("BLOB_UNKNOWN", "blob unknown to registry", 404)
    headers = {**OCI_API_VERSION, "Docker-Content-Digest": digest, "Location": str(request.url)}
    return FileResponse(path, media_type="application/octet-stream", headers=headers)
