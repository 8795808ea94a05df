"""The EQL language, Elasticsearch dialect: parse, verify, print and compile queries.

Public surface (docs/architecture.md): :func:`parse_query`, :func:`compile_query`,
:func:`to_text`, :class:`EqlError`. Engines consume only :mod:`auditeql.eql.plan` objects.
"""

from __future__ import annotations

from . import ast
from .errors import EqlError
from .parser import parse_query
from .plan import Plan
from .printer import to_text
from .verifier import verify

__all__ = ["EqlError", "ast", "compile_query", "parse_query", "to_text", "verify"]


def compile_query(query_or_text: str | ast.Query, *, event_category_field: str = "event.category") -> Plan:
    """Parse (if text), verify and compile a query into an engine plan; raises :class:`EqlError`."""
    from .compiler import build_plan

    query = parse_query(query_or_text) if isinstance(query_or_text, str) else query_or_text
    verify(query)
    return build_plan(query, event_category_field=event_category_field)
