"""The models' DuckDB SQL as Spark SQL: sqlglot's transpiler plus rewrites for what it passes
through unchanged.

Models are written once, in DuckDB's dialect. ``to_spark`` copies a query's expression tree,
applies every rewrite in ``REWRITES`` (each one small, each tested on a real Spark in
tests/test_spark_sql.py) and generates Spark SQL. A rewrite receives the node and the input
tables' columns (``Catalog``), for the one construct that needs them: ``columns(*)``.
``len()`` of a list is told from a string's ``length()`` when the model is parsed
(``engine.project.ModelDialect``), so it arrives here as ARRAY_LENGTH, which sqlglot writes SIZE.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlglot import exp

from engine.errors import ProjectError

DIALECT = "spark"

# Table name ("layer.name") -> its columns in order, as the Spark catalog holds them.
Catalog = Mapping[str, tuple[str, ...]]
Rewrite = Callable[[exp.Expression, Catalog], exp.Expression]


def _function(node: exp.Expression, name: str) -> bool:
    return isinstance(node, exp.Anonymous) and node.name.lower() == name


def is_finite(node: exp.Expression, _: Catalog) -> exp.Expression:
    """``isfinite(x)``: Spark has none. NaN is not below infinity in Spark, nor is infinity."""
    if not _function(node, "isfinite"):
        return node
    infinity = exp.cast(exp.Literal.string("Infinity"), exp.DataType.build("double"))
    return exp.LT(this=exp.Abs(this=node.expressions[0]), expression=infinity)


def quantiles(node: exp.Expression, _: Catalog) -> exp.Expression:
    """``quantile_cont(x, q)`` and ``quantile_cont(x, [q1, q2])``: Spark's ``percentile``
    interpolates the same way and takes an array of fractions."""
    if not isinstance(node, exp.PercentileCont) or node.find_ancestor(exp.WithinGroup):
        return node
    fractions = node.expression
    if isinstance(fractions, exp.Array):
        fractions = exp.func("array", *fractions.expressions)
    return exp.func("percentile", node.this, fractions)


def list_position(node: exp.Expression, _: Catalog) -> exp.Expression:
    """``list_position(list, x)``: Spark's ``array_position`` counts from 1 as well, but says 0
    where DuckDB says NULL (not found), and a BIGINT where DuckDB's is an INTEGER."""
    if not _function(node, "list_position"):
        return node
    position = exp.func("array_position", *node.expressions)
    return exp.cast(exp.func("nullif", position, exp.Literal.number(0)), "int")


def full_match(node: exp.Expression, _: Catalog) -> exp.Expression:
    """``regexp_full_match(x, p)``: Spark's RLIKE finds the pattern anywhere; anchored, it
    must match the whole text, as DuckDB's does."""
    if not isinstance(node, exp.RegexpFullMatch):
        return node
    pattern = node.expression
    if isinstance(pattern, exp.Literal):
        anchored: exp.Expression = exp.Literal.string(f"^(?:{pattern.name})$")
    else:
        anchored = exp.func("concat", exp.Literal.string("^(?:"), pattern, exp.Literal.string(")$"))
    return exp.RegexpLike(this=node.this, expression=anchored)


def non_null_elements(node: exp.Expression, _: Catalog) -> exp.Expression:
    """``list_filter(l, lambda x: x is not null)``: Spark's ``array_compact``. Spark allows no
    subquery inside a lambda, and the staging models' reasons hold ``IN (select …)``."""
    if not isinstance(node, exp.ArrayFilter):
        return node
    function = node.expression
    if not isinstance(function, exp.Lambda) or len(function.expressions) != 1:
        return node
    parameter = function.expressions[0].name
    body = function.this
    keeps_non_null = (
        isinstance(body, exp.Not)
        and isinstance(body.this, exp.Is)
        and isinstance(body.this.expression, exp.Null)
        and isinstance(body.this.this, exp.Column | exp.Identifier)
        and body.this.this.name == parameter
    )
    return exp.func("array_compact", node.this) if keeps_non_null else node


# strptime code -> (Java pattern, fixed-width pattern when another code follows directly).
STRPTIME_TO_JAVA = {
    "%Y": ("yyyy", "yyyy"), "%y": ("yy", "yy"), "%m": ("M", "MM"), "%d": ("d", "dd"),
    "%H": ("H", "HH"), "%I": ("h", "hh"), "%M": ("m", "mm"), "%S": ("s", "ss"),
    "%f": ("SSSSSS", "SSSSSS"), "%p": ("a", "a"), "%b": ("MMM", "MMM"),
    "%B": ("MMMM", "MMMM"), "%j": ("D", "DDD")
}  # fmt: skip


def java_pattern(strptime_format: str) -> str:
    """A strptime format as a Java date-time pattern. A number takes one or two digits, as
    strptime's do, unless it touches another field with no separator ("%Y%m%d"): then it has
    its full width ('20231105'; DuckDB would also read '2023115' as 5 November, Spark not)."""
    pieces: list[tuple[str, str, str]] = []  # (flexible, fixed, literal) per field or char
    position = 0
    while position < len(strptime_format):
        character = strptime_format[position]
        if character != "%":
            pieces.append(("", "", f"'{character}'" if character.isalpha() else character))
            position += 1
            continue
        code = strptime_format[position : position + 2]
        position += 2
        if code == "%%":
            pieces.append(("", "", "%"))
        elif code in STRPTIME_TO_JAVA:
            pieces.append((*STRPTIME_TO_JAVA[code], ""))
        else:
            raise ProjectError(f"date format code {code} has no Spark equivalent")
    out = []
    for index, (flexible, fixed, literal) in enumerate(pieces):
        neighbours = pieces[max(index - 1, 0) : index] + pieces[index + 1 : index + 2]
        touching = any(not n[2] for n in neighbours)
        out.append(literal or (fixed if touching else flexible))
    return "".join(out)


def parse_timestamp(node: exp.Expression, _: Catalog) -> exp.Expression:
    """``try_strptime(x, format)``: Spark's ``try_to_timestamp`` with the Java pattern."""
    if not _function(node, "try_strptime"):
        return node
    text, pattern = node.expressions
    return exp.func("try_to_timestamp", text, exp.Literal.string(java_pattern(pattern.name)))


def line_hash(node: exp.Expression, _: Catalog) -> exp.Expression:
    """``hash(…)``: Spark's ``hash`` has 32 bits; ``xxhash64`` has DuckDB's 64. The values
    differ between the engines; the models only compare them."""
    return exp.func("xxhash64", *node.expressions) if _function(node, "hash") else node


def row_value(node: exp.Expression, _: Catalog) -> exp.Expression:
    """``row(a, b)``: Spark's ``struct``."""
    return exp.func("struct", *node.expressions) if _function(node, "row") else node


def ordered_mode(node: exp.Expression, _: Catalog) -> exp.Expression:
    """``mode(x order by x)``, ties to the first in sort order: Spark's deterministic mode
    returns the lowest of the tied values."""
    if not isinstance(node, exp.Mode) or not isinstance(node.this, exp.Order):
        return node
    return exp.func("mode", node.this.this, exp.true())


def unpivot(node: exp.Expression, _: Catalog) -> exp.Expression:
    """DuckDB's ``UNPIVOT rel ON a, b AS c INTO NAME n VALUE v``: Spark's
    ``SELECT * FROM rel UNPIVOT (v FOR n IN (a, b AS c))`` (both leave out null values)."""
    if not isinstance(node, exp.Pivot) or not node.args.get("unpivot") or not node.args.get("into"):
        return node
    into = node.args["into"]
    items = []
    for item in node.expressions:
        if isinstance(item, exp.Alias):
            if not isinstance(item.this, exp.Column):
                raise ProjectError(f"Spark unpivots columns only, not {item.this.sql()}")
            item = exp.PivotAlias(this=item.this, alias=item.args["alias"])
        items.append(item)
    pivot = exp.Pivot(
        expressions=[exp.to_identifier(into.expressions[0].name, quoted=True)],
        fields=[exp.In(this=exp.to_identifier(into.this.name, quoted=True), expressions=items)],
        unpivot=True,
    )
    source = node.this
    if isinstance(source, exp.Table):
        source = exp.Subquery(this=exp.select("*").from_(source.copy()))
    source = source.copy()
    source.set("pivots", [pivot])
    return exp.select("*").from_(source)


def unordered_aggregate(node: exp.Expression, _: Catalog) -> exp.Expression:
    """``avg(x order by id)``: DuckDB sums in that order so the last digits repeat run to run;
    Spark takes no order in an aggregate and sums in its partitions' order (figures agree with
    DuckDB's to about 1e-15 relative, not to the bit)."""
    ordered = isinstance(node, exp.AggFunc) and isinstance(node.this, exp.Order)
    if ordered and not isinstance(node, exp.Mode | exp.GroupConcat):
        node.set("this", node.this.this)
    return node


def struct_rows(node: exp.Expression, _: Catalog) -> exp.Expression:
    """``unnest(list_of_structs, recursive := true)``: one row per element, one column per
    field, which Spark's ``inline`` does."""
    if not isinstance(node, exp.Explode):
        return node
    options = {
        o.name.lower(): o.expression for o in node.expressions if isinstance(o, exp.PropertyEQ)
    }
    recursive = options.get("recursive")
    if isinstance(recursive, exp.Boolean) and recursive.this:
        return exp.func("inline", node.this)
    return node


def natural_log(node: exp.Expression, _: Catalog) -> exp.Expression:
    """``ln(x)``: DuckDB follows IEEE (ln 0 is -infinity, ln of a negative is NaN), so
    ``isfinite`` flags such values; Spark's ``ln`` says null for both."""
    if not isinstance(node, exp.Ln):
        return node
    value = node.this
    log = exp.Anonymous(this="ln", expressions=[value.copy()])
    minus_infinity = exp.cast(exp.Literal.string("-Infinity"), exp.DataType.build("double"))
    not_a_number = exp.cast(exp.Literal.string("NaN"), exp.DataType.build("double"))
    return (
        exp.case()
        .when(exp.GT(this=value.copy(), expression=exp.Literal.number(0)), log)
        .when(exp.EQ(this=value.copy(), expression=exp.Literal.number(0)), minus_infinity)
        .when(exp.LT(this=value.copy(), expression=exp.Literal.number(0)), not_a_number)
    )


def try_casts(node: exp.Expression, _: Catalog) -> exp.Expression:
    """``TRY_CAST`` stays TRY_CAST: sqlglot writes a plain CAST for Spark (null on failure only
    with ANSI mode off) unless the cast is marked safe; Spark 4 runs ANSI, where CAST fails."""
    if isinstance(node, exp.TryCast):
        node.set("safe", True)
    return node


def macro_as_function(node: exp.Expression, _: Catalog) -> exp.Expression:
    """``CREATE MACRO ml.f(a, b) AS expr`` (the generated scorers): Spark's SQL function
    ``CREATE FUNCTION ml.f(a DOUBLE, b DOUBLE) RETURN expr``. Spark wants typed parameters;
    the scorers take feature values, which are doubles; the result type is the expression's."""
    if not isinstance(node, exp.Create) or node.kind != "MACRO":
        return node
    signature = node.this
    parameters = [
        exp.ColumnDef(
            this=exp.to_identifier(p.name, quoted=True), kind=exp.DataType.build("double")
        )
        for p in signature.expressions
    ]
    function = exp.UserDefinedFunction(this=signature.this, expressions=parameters, wrapped=True)
    return exp.Create(
        this=function,
        kind="FUNCTION",
        replace=node.args.get("replace"),
        expression=exp.Return(this=node.expression),
    )


def parquet_table(node: exp.Expression, _: Catalog) -> exp.Expression:
    """``CREATE OR REPLACE TABLE t AS …``: Spark replaces no Parquet table, so a table is
    created once, as Parquet in the warehouse folder (each Spark run builds tables of its own)."""
    if not isinstance(node, exp.Create) or node.kind != "TABLE":
        return node
    node.set("replace", False)
    properties = node.args.get("properties") or exp.Properties(expressions=[])
    if not any(isinstance(p, exp.FileFormatProperty) for p in properties.expressions):
        properties.append("expressions", exp.FileFormatProperty(this=exp.var("parquet")))
    node.set("properties", properties)
    return node


def column_comment(node: exp.Expression, _: Catalog) -> exp.Expression:
    """``COMMENT ON COLUMN t.c IS '…'``: Spark's ``ALTER TABLE t ALTER COLUMN c COMMENT '…'``."""
    if not isinstance(node, exp.Comment) or node.args.get("kind") != "COLUMN":
        return node
    column = node.this
    table = exp.Table(this=column.args["table"], db=column.args.get("db"))
    action = exp.AlterColumn(this=column.args["this"], comment=node.expression)
    return exp.Alter(this=table, kind="TABLE", actions=[action])


def delete_all(node: exp.Expression, _: Catalog) -> exp.Expression:
    """``DELETE FROM t`` (every row): Spark deletes no rows from Parquet; it truncates."""
    if not isinstance(node, exp.Delete) or node.args.get("where"):
        return node
    return exp.TruncateTable(expressions=[node.this])


def materialized_once(node: exp.Expression, _: Catalog) -> exp.Expression:
    """``WITH x AS MATERIALIZED (…)``: computed once by Spark too.

    Spark has no such hint: it inlines a deterministic CTE into every reader, and computes one
    that is not deterministic once for all of them. A filter that is always true, but not
    deterministic, makes it so (stg_customers_checked at 1M rows: 12.3 s inlined, 9.5 s so).
    ``AS NOT MATERIALIZED`` is what Spark does anyway: the hint is dropped.
    """
    if isinstance(node, exp.CTE) and node.args.get("materialized") is False:
        node.set("materialized", None)
        return node
    if isinstance(node, exp.CTE) and node.args.get("materialized") is not None:
        node.set("materialized", None)
        query = node.this
        if not isinstance(query, exp.Select):  # a union, say: filtered as a whole
            query = exp.select("*").from_(query.subquery("materialized"))
        always = exp.GTE(this=exp.func("rand"), expression=exp.Literal.number(0))
        node.set("this", query.where(always, copy=False))
    return node


def expand_columns(query: exp.Expression, catalog: Catalog) -> exp.Expression:
    """``*columns(q.* exclude (a, b))``: the columns it names, listed, from the input tables'
    columns (Spark has no COLUMNS; the raw tables' columns are known only once loaded)."""
    for node in list(query.find_all(exp.Columns)):
        star = node.this
        qualifier = star.table if isinstance(star, exp.Column) else ""
        star = star.this if isinstance(star, exp.Column) else star
        if not isinstance(star, exp.Star):
            raise ProjectError(f"Spark: columns() takes a star, not {node.this.sql()}")
        excluded = {c.name for c in star.args.get("except_") or []}
        names = _relation_columns(_star_source(node, qualifier), query, catalog)
        items = [exp.column(n, table=qualifier or None, quoted=True) for n in names]
        _splice(node, [i for i, n in zip(items, names, strict=True) if n not in excluded])
    return query


def _star_source(node: exp.Expression, qualifier: str) -> exp.Expression:
    select = node.find_ancestor(exp.Select)
    assert select is not None
    sources = [select.args["from_"].this, *(j.this for j in select.args.get("joins") or [])]
    if qualifier:
        sources = [s for s in sources if s.alias_or_name == qualifier]
    if len(sources) != 1:
        raise ProjectError(f"Spark: cannot tell which relation {node.sql()} reads")
    return sources[0]


def _relation_columns(
    source: exp.Expression, query: exp.Expression, catalog: Catalog
) -> tuple[str, ...]:
    if isinstance(source, exp.Table) and source.db:
        table = f"{source.db}.{source.name}"
        if table not in catalog:
            raise ProjectError(f"Spark: the columns of {table} are not known yet")
        return catalog[table]
    ctes = {c.alias_or_name: c.this for c in query.find_all(exp.CTE)}
    body = ctes.get(source.name) if isinstance(source, exp.Table) else None
    if not isinstance(body, exp.Select):
        raise ProjectError(f"Spark: cannot list the columns of {source.sql()}")
    if [type(s) for s in body.selects] == [exp.Star]:
        return _relation_columns(body.args["from_"].this, query, catalog)
    if any(isinstance(s, exp.Star) for s in body.selects):
        raise ProjectError(f"Spark: cannot list the columns of {source.sql()}")
    return tuple(s.alias_or_name for s in body.selects)


def _splice(node: exp.Expression, items: list[exp.Expression]) -> None:
    parent, key = node.parent, node.arg_key
    assert parent is not None
    siblings = parent.args[key]
    position = next(i for i, s in enumerate(siblings) if s is node)
    parent.set(key, siblings[:position] + items + siblings[position + 1 :])


REWRITES: tuple[Rewrite, ...] = (
    is_finite,
    quantiles,
    list_position,
    full_match,
    non_null_elements,
    parse_timestamp,
    line_hash,
    row_value,
    ordered_mode,
    unpivot,
    unordered_aggregate,
    struct_rows,
    natural_log,
    try_casts,
    macro_as_function,
    parquet_table,
    column_comment,
    delete_all,
    materialized_once,
)


def to_spark(query: exp.Expression, catalog: Catalog) -> str:
    """The Spark SQL of a DuckDB query (or statement)."""
    # One copy, rewritten in place: a copy per rewrite cost more than the Spark job of a small
    # model.
    rewritten = expand_columns(query.copy(), catalog)
    for rewrite in REWRITES:
        rewritten = rewritten.transform(lambda node, r=rewrite: r(node, catalog), copy=False)
    try:
        return rewritten.sql(DIALECT, copy=False, unsupported_level="raise")
    except Exception as exc:  # sqlglot's UnsupportedError names the construct
        raise ProjectError(f"cannot write this query for Spark: {exc}") from exc
