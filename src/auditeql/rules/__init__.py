"""rules layer: Elastic detection-rules TOML, validated and compiled (see docs/architecture.md).

Public surface: :class:`Rule`, :class:`RuleError`, :func:`load_rule`, :func:`load_rules`,
:func:`builtin_rules`. Kibana-style scheduling of rules over recorded data lives in
:mod:`auditeql.rules.replay`.
"""

from auditeql.rules.loader import LoadReport, builtin_rules, load_rule, load_rules, parse_rule
from auditeql.rules.model import Rule, RuleError, UnsupportedRule

__all__ = ["LoadReport", "Rule", "RuleError", "UnsupportedRule", "builtin_rules", "load_rule", "load_rules", "parse_rule"]
