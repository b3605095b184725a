"""What every route of the console shares: the role-checked user of each area, the page response, and the
DAG ids the console links to and asks Airflow about.

Decisions:
- A route names its area's user type (``BatchesUser``, ``ArchiveUser``, …) as a parameter: FastAPI runs
  ``roles.requires`` before the route body, so no route can forget the check (401 without Airflow's login,
  403 without one of the area's SealFlow roles).
- The database is the composition root's (``sealflow_airflow.root``), asked on every request, so the
  console sees exactly what the DAGs write and a test's :func:`root.reset` takes effect.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.responses import HTMLResponse

from sealflow_airflow import root
from sealflow_airflow.console import pages
from sealflow_airflow.console.roles import ARCHIVE, BATCHES, HEALTH, INBOX, METRICS, RETRY, ConsoleUser, requires

DAG_ID = "stamp_batch"
APPROVAL_TASK = "seal_use_approval"
FILING_DAG_ID = "file_records"

BatchesUser = Annotated[ConsoleUser, Depends(requires(BATCHES, root.sessions))]
ArchiveUser = Annotated[ConsoleUser, Depends(requires(ARCHIVE, root.sessions))]
HealthUser = Annotated[ConsoleUser, Depends(requires(HEALTH, root.sessions))]
MetricsUser = Annotated[ConsoleUser, Depends(requires(METRICS, root.sessions))]
InboxUser = Annotated[ConsoleUser, Depends(requires(INBOX, root.sessions))]
RetryUser = Annotated[ConsoleUser, Depends(requires(RETRY, root.sessions))]
AnyUser = Annotated[ConsoleUser, Depends(requires(None, root.sessions))]


def html_page(title_zh: str, title_en: str, body: str, user: ConsoleUser) -> HTMLResponse:
    """A console page: ``body`` in the layout (navigation, stylesheet, the person's name)."""
    return HTMLResponse(pages.layout(title_zh, title_en, body, user.name))
