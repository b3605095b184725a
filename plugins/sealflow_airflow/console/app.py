"""The console's FastAPI app (mounted by Airflow's api-server at ``/sealflow``): the areas' routes put
together, the OpenAPI document and the home redirect.

Every route depends on ``roles.requires`` (through the user types of ``console.dependencies``), which
first runs Airflow's own ``get_user`` (401 without a valid token or UI session cookie) and then checks
the person's SealFlow roles (403). There is no static route: the stylesheet is inlined into each page,
so no endpoint escapes the check.

Each area lives in a module of its own, as an ``APIRouter`` included here in the order the
OpenAPI document lists them:

- ``batch_routes``: batches, batch detail, bad rows as CSV;
- ``archive_routes``: archive search, record page and preview, package verification, share link, EEP;
- ``inbox_routes``: the keeper's 用章审批 inbox;
- ``verify_routes``: 验章 upload (page and API);
- ``health_routes``: health, dead-letter retry, Prometheus metrics.

Decision: the database and key store are reached through the composition root
(``sealflow_airflow.root``), so the console sees exactly what the DAGs write.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response

from sealflow_airflow.console import archive_routes, batch_routes, health_routes, inbox_routes, pages, verify_routes
from sealflow_airflow.console.dependencies import AnyUser

# No /docs or /redoc (Swagger UI loads its assets from a CDN, and they would be unprotected routes);
# the OpenAPI document itself is served below behind the login.
app = FastAPI(title="SealFlow 控制台 console", docs_url=None, redoc_url=None, openapi_url=None,
              description="批次、档案、验章与运行状况 — batches, archive, 验章 (seal verification) and health. "
                          "Authenticate as for Airflow's REST API (Bearer JWT from POST /auth/token).")
for area in (batch_routes, archive_routes, inbox_routes, verify_routes, health_routes):
    app.include_router(area.router)


@app.get("/openapi.json", include_in_schema=False)
def openapi(user: AnyUser) -> dict[str, Any]:
    """The console's OpenAPI document (the 验章 API for connected systems), for logged-in users only."""
    return app.openapi()


@app.get("/", include_in_schema=False)
def home(user: AnyUser) -> Response:
    return Response(status_code=307, headers={"Location": f"{pages.URL_PREFIX}/batches"})
