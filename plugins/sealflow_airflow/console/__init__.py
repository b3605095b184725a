"""The SealFlow console (SealFlow 控制台) inside the Airflow UI: batches, batch detail, the keeper's inbox,
archive search with preview, share links and EEP export, 验章 upload, health and metrics, served by a
FastAPI app that Airflow's api-server mounts.

Decisions:
- Server-rendered HTML (Chinese first, English second) with one stylesheet shipped in this package:
  nothing is fetched from outside the machine, and no build step is needed.
- Every route depends on Airflow's own ``get_user`` (the auth manager's JWT from the Authorization
  header or the UI's ``_token`` cookie) and then on the person's SealFlow roles, read from the
  registry by the Airflow user's name (docs/identities.md: the Airflow user *is* the registry user).
- The console mostly reads. It writes in three audited places only: a share link (a tar under
  ``shares/``), an EEP export (signed, not stored), and a dead letter made due again; a keeper's answer
  goes to Airflow's own HITL endpoint, where SealFlow's answer gate decides it. It never changes a batch.
"""

from __future__ import annotations

URL_PREFIX = "/sealflow"

EXTERNAL_VIEWS = [
    {"name": "SealFlow 批次 Batches", "href": f"{URL_PREFIX}/batches", "destination": "nav",
     "category": "SealFlow", "url_route": "sealflow-batches"},
    {"name": "SealFlow 待我审批 Inbox", "href": f"{URL_PREFIX}/inbox", "destination": "nav",
     "category": "SealFlow", "url_route": "sealflow-inbox"},
    {"name": "SealFlow 档案 Archive", "href": f"{URL_PREFIX}/archive", "destination": "nav",
     "category": "SealFlow", "url_route": "sealflow-archive"},
    {"name": "SealFlow 验章 Verify", "href": f"{URL_PREFIX}/verify", "destination": "nav",
     "category": "SealFlow", "url_route": "sealflow-verify"},
    {"name": "SealFlow 运行状况 Health", "href": f"{URL_PREFIX}/health", "destination": "nav",
     "category": "SealFlow", "url_route": "sealflow-health"},
]
