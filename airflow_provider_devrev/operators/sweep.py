"""List an interval again, later, and write only the sessions its export missed: uploads later than ``settle``."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain
from typing import Any

from airflow_provider_devrev import metrics
from airflow_provider_devrev._compat import AirflowFailException
from airflow_provider_devrev._export_files import exists, late_files, next_late_file, session_ids, without
from airflow_provider_devrev.exceptions import DevRevInvalidInputError
from airflow_provider_devrev.operators.devrev import ListSessionsOperator, write_json_lines


class SweepLateSessionsOperator(ListSessionsOperator):
    """
    List an interval that was exported already and write the sessions that export missed to a file of their own.

    A session uploaded more than ``settle`` after its interval ended is in no export: the interval was listed
    before DevRev had it. Run this some time later (the example sweeps the day before yesterday) with the same
    ``output_path``, interval and filters as the export. It reads the ids of ``output_path`` and of the sweep
    files already beside it (ids only, one line at a time), lists the interval, and writes the sessions found
    in none of them to ``<stem>.late-<n><suffix>`` beside the export (``day.jsonl`` → ``day.late-1.jsonl``,
    then ``day.late-2.jsonl``), published only once complete. So each session is in exactly one of the files,
    and a rerun of the sweep, or of the export, repeats none. When nothing is missing no file is written and
    the XCom is ``{"path": None, "count": 0}``; otherwise ``{"path": ..., "count": ...}``.

    A session the export holds and DevRev no longer returns (retention, an erasure request) stays where it is:
    a sweep only adds. The export must exist: without it the sweep fails, rather than put a whole interval in
    a ``late`` file.

    Takes every argument of :class:`~airflow_provider_devrev.operators.devrev.ListSessionsOperator`;
    ``output_path`` is required and names the export to sweep, e.g.
    ``"s3://aws_default@bucket/devrev/{{ macros.ds_add(data_interval_start | ds, -1) }}/crashes.jsonl"``
    with ``created_after``/``created_before`` one day back. ``allow_shrink`` and ``max_xcom_sessions`` do not
    apply. Run one sweep of an export at a time (``max_active_runs=1``): two at once could pick the same ``n``.

    :param output_path: The export whose interval this sweeps (its path or URL, or an ``ObjectStoragePath``).
        Templated.
    """

    #: The sweep file this run wrote, for lineage; ``None`` before the listing, or when nothing was missing.
    _late_file: str | None = None

    def __init__(self, *, output_path: Any, **kwargs: Any) -> None:
        if output_path is None:
            raise DevRevInvalidInputError("output_path", output_path, "must name the export to sweep")
        super().__init__(output_path=output_path, **kwargs)

    def _export(self, target: Any, sessions: Iterable[dict[str, Any]], where: str) -> dict[str, Any]:
        if not exists(target):
            raise AirflowFailException(
                f"nothing to sweep: {target} does not exist. Run (or rerun) the export of this interval "
                f"({where}) first; the sweep writes only what it missed"
            )
        swept = late_files(target)
        known = session_ids([target, *swept])
        missing = without(sessions, known)
        first = next(missing, None)
        if first is None:
            self.log.info("No session missing from %s and its %d sweep file(s) (%s)", target, len(swept), where)
            return {"path": None, "count": 0}
        path, count = write_json_lines(next_late_file(target, swept), chain([first], missing))
        self._late_file = path
        metrics.incr("sessions_exported", count)
        self.log.info("Wrote %d sessions the export missed (%s) to %s", count, where, path)
        return {"path": path, "count": count}

    def _lineage_files(self) -> tuple[list[Any], list[Any]]:
        # A sweep reads the export (its ids) and writes a sweep file beside it, known once it has been written.
        return [self.output_path], [] if self._late_file is None else [self._late_file]
