"""The stack's executor: Airflow's LocalExecutor without the race that failed a just-answered 用章审批.

**The race** (Airflow 3.3.2; upstream apache/airflow#67287 and #72716, scheduler-side fixes #68741
and PR #72767, the per-workload-run id of PR #73510). A task that parks — 用章审批 waiting for the
keeper in AWAITING_INPUT, or any deferral — writes its parked state through the Execution API and
then its process exits; the LocalExecutor worker reports that exit as ``SUCCESS`` under the task
instance key, whose try number stays the same when the task resumes. The keeper's answer resumes
the task at once (the API server moves it to SCHEDULED), the scheduler queues it and hands the
resumed workload to a worker — under the *same key*. When the parking process's exit is read only
after that hand-over (under load it is: the worker finishes the parked process's log and exit a
second or more after the park), ``process_executor_events`` sees a "finished" event for a task
instance that is QUEUED or RUNNING, which it cannot tell from a task killed outside Airflow: it logs
"state mismatch" and fails the resumed attempt. Airflow's guard covers only SCHEDULED (#66431);
``executor.has_task`` does not help once the workload has left ``queued_tasks`` (nothing adds it to
``running``).

**The fix, at the event's source.** The executor is the one place that knows both workloads: it
counts the task workloads it has handed to its workers per key, and a worker's finished event for a
key that still has another of its workloads out belongs to the superseded one (the parking exit):
it is dropped, with a log line. Only the last outstanding workload's event reaches the scheduler, so
the resumed attempt can no longer be failed by its predecessor's exit, however late that exit is
read and whatever the answer's timing. Events read while no newer workload was handed over pass
unchanged (the scheduler sees AWAITING_INPUT/DEFERRED, or SCHEDULED with ``next_method``, or a task
still in ``queued_tasks`` — all states it already ignores such an event for), and so do the
scheduler's own ``fail``/``change_state`` calls (they do not come through the worker queue).

The class keeps Airflow's name so that every check of "a local executor" by class name stays true;
the stack selects it with ``[core] executor = sealflow_airflow.executor.LocalExecutor``
(``sealflow.stack.airflow_env``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from airflow.executors.local_executor import LocalExecutor as AirflowLocalExecutor
from airflow.models.taskinstancekey import TaskInstanceKey


class LocalExecutor(AirflowLocalExecutor):
    """Airflow's LocalExecutor whose workers' finished events never outlive their workload's successor."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._out: Counter[TaskInstanceKey] = Counter()  # task workloads handed to workers, not yet finished

    def _process_workloads(self, workload_list: list[Any]) -> None:
        for workload in workload_list:
            if isinstance(workload.key, TaskInstanceKey):
                self._out[workload.key] += 1
        super()._process_workloads(workload_list)

    def _read_results(self) -> None:
        # Airflow's loop, with one filter: task workloads report exactly one event, when they finish.
        while not self.result_queue.empty():
            key, state, _exc = self.result_queue.get()
            if isinstance(key, TaskInstanceKey) and self._superseded(key):
                self.log.info("Dropped executor event %s of %s: a later workload of this task instance "
                              "(resumed after parking) is still running", state, key)
                continue
            self.change_state(key, state)

    def _superseded(self, key: TaskInstanceKey) -> bool:
        """Count one workload of ``key`` as finished; True when another one of the same key is still out."""
        left = self._out[key] - 1
        if left > 0:
            self._out[key] = left
            return True
        self._out.pop(key, None)
        return False
