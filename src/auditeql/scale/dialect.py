"""SQL dialects as data: the few spellings in which DuckDB and Spark SQL differ.

Why data and not subclasses full of methods: the EQL→SQL compiler (:mod:`auditeql.scale.sql`)
emits one SQL shape; only function names, lambda syntax, quoting and null-safe equality change
between engines, so a dialect is a table of templates (the sqlglot idea, kept small).
"""

from __future__ import annotations

from dataclasses import dataclass

_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = "abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class Dialect:
    """Templates use ``{x}``-style placeholders filled by :meth:`render`."""

    name: str
    ident_quote: str
    #: True when ``\\`` is an escape character inside string literals (Spark's default parser).
    backslash_escapes: bool
    text_type: str
    #: any element of list ``{col}`` satisfies ``{pred}`` over lambda variable ``{v}``
    list_any: str
    list_contains: str
    list_nonempty: str
    #: whole-value regular-expression match (the pattern is already anchored by the caller)
    regex_match: str
    #: how a whole-value pattern is wrapped before ``regex_match`` (``{p}`` = the pattern)
    regex_anchor: str
    null_safe_eq: str
    #: a one-row-per-element expansion of a list column, as a SELECT-list item aliased ``{alias}``
    explode: str
    one_list: str = "array({x})"
    byte_length: str = "octet_length({x})"
    char_length: str = "length({x})"

    def quote(self, value: str) -> str:
        """A SQL string literal for ``value``."""
        if self.backslash_escapes:
            value = value.replace("\\", "\\\\").replace("'", "\\'")
        else:
            value = value.replace("'", "''")
        return f"'{value}'"

    def ident(self, name: str) -> str:
        q = self.ident_quote
        return q + name.replace(q, q + q) + q

    def render(self, template: str, **parts: str) -> str:
        return template.format(**parts)

    def ascii_lower(self, expr: str) -> str:
        """ASCII-only lower-casing: Lucene's ``case_insensitive`` flag folds A-Z and nothing else.

        ``lower`` folds Unicode too, so it is used only on pure-ASCII values (byte length equal
        to character length); ``translate`` (slow, but exact) handles the rest.
        """
        return (
            f"CASE WHEN {self.byte_length.format(x=expr)} = {self.char_length.format(x=expr)} "
            f"THEN lower({expr}) ELSE translate({expr}, '{_UPPER}', '{_LOWER}') END"
        )


DUCKDB = Dialect(
    name="duckdb",
    ident_quote='"',
    backslash_escapes=False,
    text_type="VARCHAR",
    list_any="coalesce(list_bool_or(list_transform({col}, lambda {v}: coalesce({pred}, false))), false)",
    list_contains="coalesce(list_contains({col}, {value}), false)",
    list_nonempty="coalesce(len({col}) > 0, false)",
    regex_match="regexp_full_match({x}, {pattern})",
    regex_anchor="(?s){p}",
    null_safe_eq="({a} IS NOT DISTINCT FROM {b})",
    explode="unnest({col})",
    one_list="[{x}]",
    byte_length="strlen({x})",
    char_length="length({x})",
)

SPARK = Dialect(
    name="spark",
    ident_quote="`",
    backslash_escapes=True,
    text_type="STRING",
    list_any="coalesce(exists({col}, {v} -> coalesce({pred}, false)), false)",
    list_contains="coalesce(array_contains({col}, {value}), false)",
    list_nonempty="coalesce(size({col}) > 0, false)",
    regex_match="({x} RLIKE {pattern})",
    regex_anchor="(?s)\\A(?:{p})\\z",
    null_safe_eq="({a} <=> {b})",
    explode="explode({col})",
    byte_length="octet_length({x})",
    char_length="char_length({x})",
)

DIALECTS: dict[str, Dialect] = {d.name: d for d in (DUCKDB, SPARK)}


def get_dialect(name: str | Dialect) -> Dialect:
    if isinstance(name, Dialect):
        return name
    try:
        return DIALECTS[name]
    except KeyError:
        raise ValueError(f"unknown SQL dialect {name!r}; choose one of {', '.join(DIALECTS)}") from None
