"""Reports: volumes, response and resolution times, SLA adherence and satisfaction.

- ``period``: the reporting window from ``--since`` or ``--from``/``--to`` (user errors exit 64).
- ``calendar``: business-hour intervals and UTC offsets of a time zone, as small tables for SQL.
- ``sql``: the SQL dialect differences between SQLite and PostgreSQL, and the temporary tables.
- ``query`` and ``percentiles``: every figure aggregated in SQL; Python sees groups, not tickets.
- ``model``: the frozen result (``Report``); ``build``: from an App and options to a rendering.
- ``render_table``, ``render_csv``, ``render_json``, ``render_html`` (with ``charts``), ``fmt``.
- ``digest``: the weekly digest mail, queued through the outbox by a scheduled job.
"""
