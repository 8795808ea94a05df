"""alerts layer: Kibana-shaped alert documents, process context, the SQLite store, sinks.

See :mod:`auditeql.alerts.build` (documents and ids), :mod:`auditeql.alerts.context`
(command lines and ancestry), :mod:`auditeql.alerts.store` (SQLite) and
:mod:`auditeql.alerts.sinks` (table, NDJSON; webhook and syslog in their own modules).
"""
