"""Expand a SQL model's column-set macros into plain SQL, as sqlglot expressions.

A model names no customer column; it names a column set (engine/project/columns.py) and says what to
do with each member:

- ``each(<set>, <template>, …)`` repeats the templates once per column, in place, wherever a list
  is (select items, function arguments, list elements, UNPIVOT's ON). In the template, a name
  that starts with ``_`` stands for the column: ``_`` is the column, ``_mean`` becomes
  ``<column>_mean``, ``q._`` keeps its qualifier, the string ``'_'`` is the column's name and
  ``transformed(x)`` applies the feature's configured transform. Over ``feature_pairs``, ``_1`` and
  ``_2`` are the pair's columns and ``'_'`` reads ``a ~ b``.
- ``typed_values(<source>, <qualifier>)``: each declared column, trimmed and typed by its kind.
- ``value_reasons(<source>)``: per declared column, the reason its value cannot be staged.
- ``is_mapped(<source>, <column>)``: true when the config maps a header to the column (a
  canonical column left unmapped is loaded as nulls), false otherwise.
- ``whole_number(<text>)``: the text as a BIGINT when it is a whole number (digits, or a whole
  number exported as a float: '17850.0'), else null. TRY_CAST alone would round '31.5' and read
  '1e1' or '1_00'.
- ``timestamp_of(<source>, <text>)``: the text as a timestamp, read with the source's
  ``date_format`` (strptime codes) or, without one, as ISO 8601; null when it is not one.
- ``repeatable_sum(<doubles>)``, ``repeatable_mean(<doubles>)``: aggregates whose last bits do
  not change from run to run, as a parallel ``sum``/``avg`` of doubles do
  (engine/project/repeatable_sums.py).

``python pipeline.py compile <model>`` prints a model after expansion: the SQL that runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlglot import exp

from engine.errors import ProjectError
from engine.project.column_sets import column_sets, declared_columns, feature_pairs
from engine.project.columns import Column, describe, transformed
from engine.project.orders import ORDER_AGGREGATES
from engine.project.repeatable_sums import repeatable_mean, repeatable_sum

if TYPE_CHECKING:
    from engine.project.config import Config

PLACEHOLDER = "_"
REPEATABLE = {"repeatable_sum": repeatable_sum, "repeatable_mean": repeatable_mean}
AGGREGATE_DECLARATION = (
    "a per-customer order aggregate, defined in intermediate.int_customer_orders"
)
PAIRS = "feature_pairs"
MACROS = ("each", "typed_values", "value_reasons")
SCALAR_MACROS = ("is_mapped", "timestamp_of", "whole_number", *REPEATABLE)


@dataclass(frozen=True)
class MacroContext:
    sets: dict[str, tuple[str, ...]]
    pairs: tuple[tuple[str, str], ...]
    sources: dict[str, tuple[Column, ...]]
    transforms: dict[str, str]
    labels: dict[str, str]
    mapped: dict[str, tuple[str, ...]]  # per source, the columns a header maps to
    date_formats: dict[str, str | None]

    @classmethod
    def from_config(cls, config: Config) -> MacroContext:
        return cls(
            sets=column_sets(config),
            pairs=feature_pairs(config),
            sources={s: declared_columns(config, s) for s in config.sources},
            transforms=config.transforms,
            labels=config.labels,
            mapped={n: tuple(s.columns) for n, s in config.sources.items()},
            date_formats={n: s.date_format for n, s in config.sources.items()},
        )

    def comment_for(self, text: str, column: str) -> str:
        """A template's comment for one column: {column}, {label} and {declared} filled in."""
        declared = next(
            (describe(c) for cs in self.sources.values() for c in cs if c.name == column),
            AGGREGATE_DECLARATION if column in ORDER_AGGREGATES else "",
        )
        label = self.labels.get(column, column)
        return (
            text.replace("{column}", column)
            .replace("{label}", label)
            .replace("{declared}", declared)
        )


def expand(query: exp.Query, context: MacroContext, where: str) -> exp.Query:
    """The query with every macro call replaced by what it stands for: column sets first, so
    each() copies its templates before the scalar macros in them grow (a repeatable_sum() is
    dozens of nodes)."""
    calls = [
        node
        for node in query.find_all(exp.Anonymous)
        if node.name.lower() in MACROS and not _inside_each(node)
    ]
    for call in calls:
        items = _expansion(call, context, where)
        if call.comments and call.name.lower() == "each":
            _comment_each(call, items, context)
            call.comments = None
        _splice(call, items, where)
    for call in [n for n in query.find_all(exp.Anonymous) if n.name.lower() in SCALAR_MACROS]:
        call.replace(_scalar(call, context, where))
    return query


def _comment_each(call: exp.Anonymous, items: list[exp.Expression], context: MacroContext) -> None:
    """A comment on each(...) describes every column it writes, placeholders filled in."""
    set_name, templates = call.expressions[0].name, len(call.expressions) - 1
    names = (
        [f"{a} ~ {b}" for a, b in context.pairs]
        if set_name == PAIRS
        else list(context.sets.get(set_name, ()))
    )
    for position, item in enumerate(items):
        column = names[position // templates]
        item.comments = item.comments or [context.comment_for(c, column) for c in call.comments]


def _inside_each(node: exp.Expression) -> bool:
    parent = node.parent
    while parent is not None:
        if isinstance(parent, exp.Anonymous) and parent.name.lower() == "each":
            return True
        parent = parent.parent
    return False


def _expansion(call: exp.Anonymous, context: MacroContext, where: str) -> list[exp.Expression]:
    name, arguments = call.name.lower(), call.expressions
    if not arguments or not isinstance(arguments[0], exp.Column) or arguments[0].table:
        raise ProjectError(
            f"{where}: {name}() takes a column set's name first, as in {name}(features, …)"
        )
    set_name = arguments[0].name
    if name == "each":
        if len(arguments) < 2:
            raise ProjectError(f"{where}: each() takes a column set and at least one template")
        return _each(set_name, arguments[1:], context, where)
    columns = _source(set_name, context, where)
    if name == "typed_values":
        qualifier = arguments[1].name if len(arguments) > 1 else ""
        return [exp.alias_(_typed(c, qualifier), c.name, quoted=True) for c in columns]
    return [reason for c in columns if (reason := _reason(c)) is not None]


def _scalar(call: exp.Anonymous, context: MacroContext, where: str) -> exp.Expression:
    name, arguments = call.name.lower(), call.expressions
    if name == "whole_number":
        if len(arguments) != 1:
            raise ProjectError(f"{where}: whole_number() takes one argument, the text")
        return whole_number(arguments[0], "bigint")
    if name in REPEATABLE:
        if len(arguments) != 1:
            raise ProjectError(f"{where}: {name}() takes one argument, the values to add up")
        return REPEATABLE[name](arguments[0])
    if len(arguments) != 2 or not isinstance(arguments[0], exp.Column) or arguments[0].table:
        raise ProjectError(f"{where}: {name}() takes a source's name and one more argument")
    source = arguments[0].name
    if source not in context.mapped:
        raise ProjectError(f"{where}: no source named '{source}' in the config")
    if name == "is_mapped":
        return exp.Boolean(this=arguments[1].name in context.mapped[source])
    return timestamp_of(arguments[1], context.date_formats[source])


def whole_number(text: exp.Expression, type_name: str) -> exp.Expression:
    integer = exp.DataType.build(type_name)
    # Most ids and counts are written as the cast writes them back ('17850'): those need no
    # pattern. The rest ('+007', '17850.0', '1.5') take the regular expressions, which cost
    # about three times the cast (10M rows, three such columns: 1.7 s against 0.7 s).
    cast = exp.TryCast(this=text.copy(), to=integer)
    written_back = exp.TryCast(this=cast.copy(), to=exp.DataType.build("varchar"))
    canonical = exp.EQ(this=written_back, expression=text.copy())
    digits = exp.func("regexp_full_match", text.copy(), exp.Literal.string(WHOLE_NUMBER))
    # '17850.0' loses its zero decimals first: Spark's TRY_CAST reads no decimals as an integer.
    integer_text = exp.func(
        "regexp_replace", text.copy(), exp.Literal.string(r"\.0+$"), exp.Literal.string("")
    )
    whole = exp.TryCast(this=integer_text, to=integer.copy())
    return exp.case().when(canonical, cast).when(digits, whole)


def timestamp_of(text: exp.Expression, date_format: str | None) -> exp.Expression:
    """The text as a timestamp, or null when it is not one. With a format, the text must match
    it exactly (digits and length): DuckDB's strptime would read '1997013' as 1997-01-03."""
    if date_format is None:
        return exp.TryCast(this=text, to=exp.DataType.build("timestamp"))
    exact = exp.func(
        "regexp_full_match", text.copy(), exp.Literal.string(format_pattern(date_format))
    )
    parsed = exp.func("try_strptime", text, exp.Literal.string(date_format))
    return exp.case().when(exact, parsed)


# What each strptime code matches: (flexible, when it touches another field with no separator).
FORMAT_FIELDS = {
    "%Y": (r"\d{4}", r"\d{4}"), "%y": (r"\d{2}", r"\d{2}"), "%m": (r"\d{1,2}", r"\d{2}"),
    "%d": (r"\d{1,2}", r"\d{2}"), "%H": (r"\d{1,2}", r"\d{2}"), "%I": (r"\d{1,2}", r"\d{2}"),
    "%M": (r"\d{1,2}", r"\d{2}"), "%S": (r"\d{1,2}", r"\d{2}"), "%f": (r"\d{1,6}", r"\d{6}"),
    "%j": (r"\d{1,3}", r"\d{3}"), "%p": ("(?:[AaPp][Mm])", "(?:[AaPp][Mm])"),
    "%b": ("[A-Za-z]{3}", "[A-Za-z]{3}"), "%B": ("[A-Za-z]+", "[A-Za-z]+"),
}  # fmt: skip


REGEX_SPECIAL = frozenset(".^$*+?()[]{}|\\")


def format_pattern(date_format: str) -> str:
    """The regular expression a text written in ``date_format`` matches in full. A number takes
    one or two digits, as strptime's do, unless it touches another field with no separator
    ("%Y%m%d"): then it has its full width, so '1997013' is no date."""
    pieces: list[tuple[str, str] | str] = []  # a field's two forms, or literal text
    position = 0
    while position < len(date_format):
        code = date_format[position : position + 2]
        if code in FORMAT_FIELDS:
            pieces.append(FORMAT_FIELDS[code])
            position += 2
        elif code == "%%":
            pieces.append("%")
            position += 2
        elif date_format[position] == "%":
            raise ProjectError(f"date format {date_format!r}: {code} is not a supported code")
        else:
            character = date_format[position]
            # Escaped only where it means something to a regex: RE2 and Java differ on the rest.
            pieces.append(f"\\{character}" if character in REGEX_SPECIAL else character)
            position += 1
    out = []
    for index, piece in enumerate(pieces):
        if isinstance(piece, str):
            out.append(piece)
            continue
        neighbours = pieces[max(index - 1, 0) : index] + pieces[index + 1 : index + 2]
        out.append(piece[1] if any(not isinstance(n, str) for n in neighbours) else piece[0])
    return "".join(out)


def _source(name: str, context: MacroContext, where: str) -> tuple[Column, ...]:
    if name not in context.sources:
        raise ProjectError(f"{where}: no source named '{name}' in the config")
    return context.sources[name]


def _each(
    set_name: str, templates: list[exp.Expression], context: MacroContext, where: str
) -> list[exp.Expression]:
    if set_name == PAIRS:
        return [
            _instantiate(t, {"_1": a, "_2": b}, f"{a} ~ {b}", context)
            for a, b in context.pairs
            for t in templates
        ]
    if set_name not in context.sets:
        known = ", ".join(sorted([*context.sets, PAIRS]))
        raise ProjectError(
            f"{where}: each({set_name}, …): no column set of that name; known: {known}"
        )
    return [_instantiate(t, {}, c, context) for c in context.sets[set_name] for t in templates]


def _instantiate(
    template: exp.Expression, names: dict[str, str], column: str, context: MacroContext
) -> exp.Expression:
    def rename(text: str) -> str:
        if text in names:
            return names[text]
        return column if text == PLACEHOLDER else column + text

    def substitute(node: exp.Expression) -> exp.Expression:
        if _is_placeholder_name(node):
            return exp.to_identifier(rename(node.name), quoted=True)
        if isinstance(node, exp.Literal) and node.is_string and node.name == PLACEHOLDER:
            return exp.Literal.string(column)
        if isinstance(node, exp.Anonymous) and node.name.lower() == "transformed":
            value = node.expressions[0].transform(substitute)
            return transformed(value, context.transforms.get(column, "none"))
        return node

    instance = template.copy().transform(substitute)
    # A comment on the template describes each column it writes, placeholders filled in.
    instance.comments = [context.comment_for(c, column) for c in template.comments or []]
    return instance


def _is_placeholder_name(node: exp.Expression) -> bool:
    """A column's or an alias's own name that starts with the placeholder."""
    return (
        isinstance(node, exp.Identifier)
        and node.name.startswith(PLACEHOLDER)
        and isinstance(node.parent, exp.Column | exp.Alias)
        and node.arg_key in ("this", "alias")
    )


def _splice(call: exp.Expression, items: list[exp.Expression], where: str) -> None:
    parent, key = call.parent, call.arg_key
    siblings = parent.args.get(key) if parent is not None else None
    if not isinstance(siblings, list):
        raise ProjectError(f"{where}: {call.sql()} must stand in a list (select items, arguments)")
    position = next(i for i, s in enumerate(siblings) if s is call)
    parent.set(key, siblings[:position] + items + siblings[position + 1 :])


def _text(column: Column, qualifier: str) -> exp.Expression:
    value = exp.column(column.name, table=qualifier or None, quoted=True)
    return exp.func("nullif", exp.Trim(this=value), exp.Literal.string(""))


def _typed(column: Column, qualifier: str) -> exp.Expression:
    text = _text(column, qualifier)
    if column.kind == "integer":
        return whole_number(text, "integer")
    if column.kind == "number":
        return exp.TryCast(this=text, to=exp.DataType.build("double"))
    if column.kind == "date":
        return exp.cast(timestamp_of(text, column.date_format), exp.DataType.build("date"))
    if column.spellings is not None:
        lowered = exp.Lower(this=text)
        case = exp.Case(this=lowered)
        for spelling, value in (column.spellings or {}).items():
            case = case.when(exp.Literal.string(spelling), exp.Literal.string(value))
        return case
    return text


WHOLE_NUMBER = r"[+-]?[0-9]+(\.0+)?"
NOT_PARSED = {
    "integer": "is not a whole number",
    "number": "is not a number",
    "date": "is not a date",
    "category": "is not in rules.accepted.{name}",  # the config's values: name their key
}


def _reason(column: Column) -> exp.Expression | None:
    """CASE: the first thing wrong with the column's value, or NULL."""
    value = exp.column(column.name, quoted=True)
    text = exp.column(f"{column.name}_text", quoted=True)
    case = exp.Case()
    if column.required:
        case = case.when(text.is_(exp.null()), exp.Literal.string(f"{column.name} is missing"))
    if column.kind in NOT_PARSED and (column.kind != "category" or column.spellings):
        unparsed = exp.and_(text.copy().is_(exp.null()).not_(), value.is_(exp.null()))
        if column.kind == "number":
            unparsed = exp.or_(unparsed, exp.func("isfinite", value.copy()).not_())
        not_parsed = NOT_PARSED[column.kind].format(name=column.name)
        message = _concat(f"{column.name} '", text.copy(), f"' {not_parsed}")
        case = case.when(unparsed, message)
    if column.bounds is not None:
        low, high = column.bounds
        outside = exp.or_(
            exp.LT(this=value.copy(), expression=exp.Literal.number(repr(low))),
            exp.GT(this=value.copy(), expression=exp.Literal.number(repr(high))),
        )
        message = _concat(
            f"{column.name} ",
            value.copy(),
            f" is outside rules.ranges.{column.name} [{_plain(low)}, {_plain(high)}]",
        )
        case = case.when(outside, message)
    return case if case.args.get("ifs") else None


def _plain(bound: float) -> str:
    """A bound as the config would write it: 15, not 15.0."""
    return str(int(bound)) if float(bound).is_integer() else repr(float(bound))


def _concat(before: str, value: exp.Expression, after: str) -> exp.Expression:
    return exp.DPipe(
        this=exp.DPipe(this=exp.Literal.string(before), expression=value),
        expression=exp.Literal.string(after),
    )
