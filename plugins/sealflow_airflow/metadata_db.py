"""Connection arguments for Airflow's own SQLite database on the embedded stack (``[database]
sql_alchemy_connect_args`` and ``sql_alchemy_connect_args_async`` name these dicts; see
``sealflow.stack.airflow_env``).

Why: SQLite lets one writer in at a time and Python's default wait for it is 5 s. On a loaded
machine a component holding the write lock is descheduled for longer than that, and whichever
component writes next fails with "database is locked": an office's trigger, a keeper's answer or a
task's state update then answers 500 and the run's outcome depends on the machine's load. 30 s —
the wait SealFlow's own database uses (``sealflow.db``) — turns those into a delay.
"""

from __future__ import annotations

SQLITE_BUSY_TIMEOUT_S = 30

SYNC_CONNECT_ARGS: dict[str, object] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
ASYNC_CONNECT_ARGS: dict[str, object] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
