"""Invalid queries: every one is an EqlError carrying the line and column of the culprit."""

from __future__ import annotations

import pytest

from auditeql.eql import EqlError, compile_query, parse_query

ERRORS = [
    # (query, message fragment, line, column)
    ("process where name = \"x\"", "use ==", 1, 20),
    ("process where name == 'x'", "double quotes", 1, 23),
    ("process where\n  name == 'x'", "double quotes", 2, 11),
    ('process where name == "\\q"', "unknown escape", 1, 24),
    ('process where name == "\\u{1}"', "2 to 8 hex digits", 1, 24),
    ('process where name == "abc', "unterminated string", 1, 23),
    ("process where foo(name) == 1", "unknown function [foo]", 1, 15),
    ("process where length(name, 2) == 1", "expects exactly 1", 1, 15),
    ("process where between(a, \"b\") == \"\"", "expects 3 to 4", 1, 15),
    ("process where length~(name) == 1", "no case-insensitive", 1, 15),
    ("process where name == other", "comparisons against fields", 1, 15),
    ("process where length(a) == length(b)", "comparisons against fields", 1, 15),
    ("process where name in (\"a\", other)", "comparisons against fields", 1, 29),
    ('process where pid in (1, "a")', "mixes types", 1, 23),
    ("process where 1", "needs to be boolean", 1, 15),
    ('process where "x"', "needs to be boolean", 1, 15),
    ('process where length("x") + 1', "needs to be boolean", 1, 15),
    ('process where "a" + 1 == 2', "needs numbers", 1, 15),
    ("sequence [a where true] by x [b where true]", "inconsistent number of join keys", 1, 30),
    ("sample by h [a where true] [b where true] by y", "inconsistent number of join keys", 1, 46),
    ("sequence by h [a where true] [b where true] until [c where true] by z", "inconsistent number of join keys", 1, 69),
    ("sequence [a where true] with runs=0 [b where true]", "[runs] must be between 1 and 100", 1, 10),
    ("sequence [a where true] with runs=101", "[runs] must be between 1 and 100", 1, 10),
    ("sequence [a where true]", "minimum of 2 queries", 1, 1),
    ("sequence [a where true] ![b where true]", "require [with maxspan]", 1, 25),
    ("sequence with maxspan=10 [a where true] [b where true]", "no time unit", 1, 23),
    ("sequence with maxspan=1.5s [a where true] [b where true]", "decimal time interval", 1, 23),
    ("sequence with maxspan=10y [a where true] [b where true]", "unknown time unit", 1, 25),
    ("sequence with maxspan=0s [a where true] [b where true]", "positive maxspan", 1, 10),
    ("sequence with maxspan=1s by h [a where true] [b where true]", "before [with]", 1, 26),
    ("sample by h [a where true] [b where true] | head 1", "pipes are not supported", 1, 43),
    ("sample by h [a where true] ![b where true]", "only supported in sequences", 1, 28),
    ("sample [a where true] [b where true]", "at least one join key", 1, 1),
    ("process where true | count", "unknown pipe [count]", 1, 22),
    ("process where true | head -1", "non-negative integer", 1, 27),
    ("process where true | head", "exactly one argument", 1, 22),
    ('process where name regex "a(b"', "invalid regular expression", 1, 26),
    ('process where name regex "a&b"', "intersection", 1, 26),
    ('process where cidrMatch(ip, "10.0.0.0/33")', "invalid prefix length", 1, 15),
    ('process where cidrMatch(ip, other)', "string literals", 1, 29),
    ('process where number(x, base) == 1', "integer literal", 1, 25),
    ("process where", "unexpected end of query", 1, 14),
    ("process where name == ", "unexpected end of query", 1, 23),
    ("where true", "mismatched input [true]", 1, 7),
    ("process where name ==  == 1", "mismatched input", 1, 24),
    ("process where name # 1", "unexpected character", 1, 20),
    ("process where /* never closed", "mismatched input [/]", 1, 15),
]


@pytest.mark.parametrize("query,fragment,line,column", ERRORS, ids=[e[1] + f"@{e[2]}:{e[3]}" for e in ERRORS])
def test_invalid_query(query: str, fragment: str, line: int, column: int) -> None:
    with pytest.raises(EqlError) as err:
        compile_query(query)
    exc = err.value
    assert fragment in exc.message
    assert (exc.line, exc.column) == (line, column), str(exc)
    assert str(exc) == f"line {line}:{column}: {exc.message}"


VALID = [
    "sequence [a where true] with runs=1 [b where true]",  # ES accepts runs=1 (py_eql does not)
    "sequence with maxspan=1s [a where true] ![b where true]",
    "sequence by h with maxspan=5m ![a where true] by w [b where true] by x ![c where true] by y until [d where true] by z",
    "sequence [a where true] [b where true] | head 5 | tail 2",
    'sample by h [a where true] by w [b where true] by x [c where true] by y',
    "process where `@timestamp` > 5 and `weird``name`.x == 1 and event.sequence == 2",
    'process where name : """raw \\ backslash"""',
    "process where x == 2147483648 and y == 9223372036854775808 and z == 1.5e3 and w == .5",
    "// comment\nprocess where /* inline */ true // trailing",
    'any where process.any == "x" and process.sequence == "y"',
    "process where ?optional.field == null and ?`back tick` != null",
]


@pytest.mark.parametrize("query", VALID)
def test_valid_queries(query: str) -> None:
    compile_query(query)


def test_literal_forms() -> None:
    q = parse_query('any where a == "\\n\\r\\t\\\\\\"\\u{41}\\u{1F600}" and b == 2147483648 and c == 99999999999999999999')
    lits = [q.filter.condition.left.left.right.value, q.filter.condition.left.right.right.value,
            q.filter.condition.right.right.value]
    assert lits[0] == '\n\r\t\\"A\U0001F600'
    assert lits[1] == 2147483648 and type(lits[1]) is int
    assert type(lits[2]) is float  # beyond long: a double, as in ES's LiteralBuilder
