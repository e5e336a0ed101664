"""The raw loader: every landing row kept as text with its file and line, however it was written."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from engine.errors import ConfigError, InputError
from engine.project.config import Config, load_config
from engine.project.sources import unmatched_warnings
from engine.refresh.loader import source_parts

SHIPPED = Path(__file__).resolve().parent.parent / "pipeline.toml"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    text = SHIPPED.read_text().replace('raw_dir = "warehouse/raw"', f'raw_dir = "{tmp_path}/raw"')
    path = tmp_path / "pipeline.toml"
    path.write_text(text)
    (tmp_path / "raw" / "customers").mkdir(parents=True)
    return load_config(path)


def land(config: Config, name: str, data: bytes) -> Path:
    path = config.raw_dir / "customers" / name
    path.write_bytes(data)
    return path


def rows(config: Config) -> list[dict]:
    return pa.concat_tables(source_parts(config, config.sources["customers"])).to_pylist()


HEADER = "CustomerID,Gender,Age,Annual Income (k$),Spending Score (1-100)"


def test_bom_crlf_quotes_and_blank_lines_keep_true_line_numbers(config: Config) -> None:
    text = (
        "\ufeff" + HEADER + "\r\n"
        "1,Male,19,15,39\r\n"
        "\r\n"
        '2,"Fe\r\nmale",21,15,81\r\n'
        '"3","Female","20","16","6"\r\n'
    )
    land(config, "a.csv", text.encode("utf-8"))
    loaded = rows(config)
    assert [r["_line_number"] for r in loaded] == [2, 4, 6]
    assert loaded[0]["customer_id"] == "1"  # the BOM is not part of the first header
    assert loaded[1]["gender"] == "Fe\r\nmale"
    assert loaded[2]["age"] == "20"
    assert {r["_source_file"] for r in loaded} == {"customers/a.csv"}
    assert all(r["_parse_error"] is None for r in loaded)


def test_values_stay_text_exactly_as_written(config: Config) -> None:
    land(config, "a.csv", f"{HEADER}\n007, Male ,19.0,15,abc\n".encode())
    (row,) = rows(config)
    assert row["customer_id"] == "007"
    assert row["gender"] == " Male "
    assert row["age"] == "19.0"
    assert row["spending_score"] == "abc"


def test_several_files_union_by_name_with_other_headers_and_extra_columns(config: Config) -> None:
    land(config, "a.csv", f"{HEADER}\n1,Male,19,15,39\n".encode())
    land(
        config,
        "b.csv",
        b"Spending_Score,Genre,Cust_ID,Annual Income,Age,Store\n50,Female,2,20,30,North\n",
    )
    loaded = rows(config)
    assert len(loaded) == 2
    second = next(r for r in loaded if r["_source_file"] == "customers/b.csv")
    assert (second["customer_id"], second["gender"], second["age"]) == ("2", "Female", "30")
    assert (second["annual_income_k"], second["spending_score"], second["Store"]) == (
        "20",
        "50",
        "North",
    )
    first = next(r for r in loaded if r["_source_file"] == "customers/a.csv")
    assert first["Store"] is None


def test_ragged_row_is_kept_with_a_parse_error(config: Config) -> None:
    land(config, "a.csv", f"{HEADER}\n1,Male,19,15,39,oops\n2,Male,19\n".encode())
    first, second = rows(config)
    assert first["_parse_error"] == "expected 5 fields, found 6 (extra: ['oops'])"
    assert second["_parse_error"] == "expected 5 fields, found 3"
    assert second["annual_income_k"] is None


def test_missing_required_column_names_file_and_column(config: Config) -> None:
    path = land(config, "bad.csv", b"CustomerID,Gender,Age,Annual Income (k$)\n1,Male,19,15\n")
    with pytest.raises(InputError) as caught:
        rows(config)
    message = str(caught.value)
    assert str(path) in message
    assert "missing required column 'spending_score'" in message


def test_two_headers_mapping_to_one_column_is_an_error(config: Config) -> None:
    land(config, "a.csv", f"{HEADER},Age\n1,Male,19,15,39,20\n".encode())
    with pytest.raises(InputError, match=r"a\.csv: line 1, column 6: header 'Age' maps to 'age'"):
        rows(config)


def test_empty_file_is_an_error(config: Config) -> None:
    land(config, "a.csv", b"")
    with pytest.raises(InputError, match=r"a\.csv: the file is empty"):
        rows(config)


def _clean_lines(count: int) -> str:
    return "".join(f"{i},Male,{20 + i % 50},15,39\n" for i in range(1, count + 1))


def test_not_utf8_names_the_real_line_and_the_key_that_fixes_it(config: Config) -> None:
    # The decoder reads ahead in chunks: the bad byte is on line 151, far past the first chunk.
    text = f"{HEADER}\n" + _clean_lines(149) + "150,Garçon,30,15,39\n" + _clean_lines(20)
    land(config, "a.csv", text.encode("latin-1"))
    with pytest.raises(InputError) as raised:
        rows(config)
    message = str(raised.value)
    assert "a.csv: line 151, byte 8 of the line (0xE7): not utf-8 text" in message
    assert 'sources.customers.encoding to its encoding (e.g. "latin-1")' in message


def _with_source_keys(config: Config, keys: str) -> Config:
    text = config.path.read_text().replace(
        'files = ["customers/*.csv"]\n', f'files = ["customers/*.csv"]\n{keys}\n', 1
    )
    config.path.write_text(text)
    return load_config(config.path)


def test_a_configured_encoding_and_delimiter_read_a_latin1_semicolon_export(
    config: Config,
) -> None:
    config = _with_source_keys(config, 'encoding = "latin-1"\ndelimiter = ";"')
    text = f"{HEADER.replace(',', ';')}\n1;Male;19;15;39\n2;Garçon;21;15;81\n"
    land(config, "a.csv", text.encode("latin-1"))
    loaded = rows(config)
    assert [r["gender"] for r in loaded] == ["Male", "Garçon"]
    assert [r["_line_number"] for r in loaded] == [2, 3]


def test_a_semicolon_export_read_with_commas_says_the_delimiter_looks_wrong(
    config: Config,
) -> None:
    land(config, "a.csv", f"{HEADER.replace(',', ';')}\n1;Male;19;15;39\n".encode())
    with pytest.raises(
        InputError,
        match=r"looks delimited by ';', not ',': set "
        r"sources\.customers\.delimiter = ';'",
    ):
        rows(config)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ('encoding = "latin-9000"', r"'sources\.customers\.encoding' = 'latin-9000' is not"),
        ('delimiter = ";;"', r"'sources\.customers\.delimiter' = ';;': expected one character"),
    ],
)
def test_a_bad_encoding_or_delimiter_is_a_config_error(
    config: Config, keys: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        _with_source_keys(config, keys)


def test_patterns_ignore_case_and_other_landing_files_are_reported(config: Config) -> None:
    land(config, "April_export.CSV", f"{HEADER}\n1,Male,19,15,39\n".encode())
    land(config, "notes.txt", b"not a customer file")
    (config.raw_dir / "customers" / ".hidden").write_bytes(b"")
    assert [r["_source_file"] for r in rows(config)] == ["customers/April_export.CSV"]
    names, warnings = unmatched_warnings(config.raw_dir, config.sources)
    assert names == ["customers/notes.txt"]
    assert "notes.txt matches no source's files (customers/*.csv, experiments/*.csv)" in warnings[0]


def test_unterminated_quote_is_an_error_naming_the_line(config: Config) -> None:
    land(config, "a.csv", f'{HEADER}\n1,Male,19,15,39\n2,"Female,20,16,6\n'.encode())
    with pytest.raises(InputError, match=r"a\.csv: line \d+: malformed CSV"):
        rows(config)


def test_no_landing_file_names_the_config_key(config: Config) -> None:
    with pytest.raises(InputError, match=r"sources\.customers\.files"):
        rows(config)


def test_load_order_does_not_depend_on_file_creation_order(config: Config) -> None:
    land(config, "z.csv", f"{HEADER}\n2,Male,19,15,39\n".encode())
    land(config, "a.csv", f"{HEADER}\n1,Male,19,15,39\n".encode())
    assert [r["_source_file"] for r in rows(config)] == ["customers/a.csv", "customers/z.csv"]


def _plain_file_with_every_kind_of_bad_line(seed: int) -> str:
    """A quote-free file: good rows, ragged rows, lines of spaces, CRLF, a BOM."""
    import random

    rng = random.Random(seed)
    lines = ["\ufeff" + HEADER]
    for number in range(400):
        kind = rng.random()
        if kind < 0.08:
            lines.append("   ")
        elif kind < 0.12:
            lines.append(",".join(str(rng.randint(0, 9)) for _ in range(rng.choice([1, 3, 4, 6]))))
        else:
            lines.append(
                f"{number},{rng.choice(['Male', 'Female', ' x '])},{rng.randint(0, 99)},1,2"
            )
    ending = rng.choice(["\n", "\r\n"])
    return ending.join(lines) + rng.choice(["", ending])


@pytest.mark.parametrize("seed", range(5))
def test_arrow_reader_agrees_with_the_csv_module_on_quote_free_files(
    config: Config, seed: int
) -> None:
    from engine.refresh import loader

    path = land(config, "a.csv", _plain_file_with_every_kind_of_bad_line(seed).encode())
    source = config.sources["customers"]
    names = list(source.columns)
    assert loader._one_record_per_line(path, len(names))
    fast = loader._read_with_arrow(path, source, names, "customers/a.csv")
    assert fast is not None
    slow = loader._read_with_csv_module(path, source, names, "customers/a.csv")

    def in_line_order(table: object) -> list[dict]:
        return sorted(table.to_pylist(), key=lambda r: r["_line_number"])  # type: ignore[attr-defined]

    assert in_line_order(fast) == in_line_order(slow)
    assert any(r["_parse_error"] for r in slow.to_pylist())


def _quoted_file(seed: int) -> str:
    """Fields quoted or not, with delimiters, doubled quotes and stray quotes inside; ragged
    rows; CRLF and a BOM: some files well quoted, some not."""
    import random

    rng = random.Random(seed)

    def field() -> str:
        text = rng.choice(["Male", "19", "", "a,b", 'say ""hi""', "x y", "  7 ", "é"])
        kind = rng.random()
        if kind < 0.4:
            return f'"{text}"'
        if kind < 0.42 and seed % 2:  # malformed: the whole file is left to the csv module
            return rng.choice(['a"b', '"ab"c', ' "ab"'])
        return text.replace('"', "").replace(",", ";")

    lines = [rng.choice(["", "\ufeff"]) + rng.choice([HEADER, '"CustomerID",' + HEADER[11:]])]
    for _ in range(300):
        lines.append(",".join(field() for _ in range(rng.choice([5, 5, 5, 5, 4, 6]))))
    ending = rng.choice(["\n", "\r\n"])
    return ending.join(lines) + rng.choice(["", ending])


def test_arrow_reader_agrees_with_the_csv_module_on_quoted_files(config: Config) -> None:
    from engine.refresh import loader

    source = config.sources["customers"]
    names = list(source.columns)
    eligible = 0
    for seed in range(24):
        path = land(config, f"q{seed}.csv", _quoted_file(seed).encode())
        if not loader._one_record_per_line(path, len(names)):
            assert seed % 2, "a well-quoted file went to the csv module"
            continue
        eligible += 1
        fast = loader._read_with_arrow(path, source, names, "customers/q.csv")
        slow = loader._read_with_csv_module(path, source, names, "customers/q.csv")
        assert fast is not None

        def in_line_order(table: object) -> list[dict]:
            return sorted(table.to_pylist(), key=lambda r: r["_line_number"])  # type: ignore[attr-defined]

        assert in_line_order(fast) == in_line_order(slow), seed
    assert eligible >= 12  # every well-quoted file, and the path is what was compared


def test_quoting_the_arrow_reader_might_read_otherwise_or_blank_lines_go_to_the_csv_module(
    config: Config,
) -> None:
    from engine.refresh import loader

    plain = land(config, "a.csv", f'"CustomerID",{HEADER[11:]}\n1,Male,19,15,39\n'.encode())
    quoted = land(config, "b.csv", f'{HEADER}\n1,"Ma,""le""",19,"",39\n'.encode())
    blank = land(
        config, "c.csv", f"{HEADER}\r\n1,Male,19,15,39\r\n\r\n2,Male,19,15,39\r\n".encode()
    )
    assert loader._one_record_per_line(plain, 5)
    assert loader._one_record_per_line(quoted, 5)  # each quoted field whole on its line
    assert not loader._one_record_per_line(blank, 5)
    # What the strict csv module reads differently, or as a record over two lines.
    for name, line in [
        ("spans", '1,"Ma\nle",19,15,39'),
        ("after", '1,"Ma"le,19,15,39'),
        ("inside", '1,M"al"e,19,15,39'),
        ("spaced", '1, "Male",19,15,39'),
        ("odd", '1,"Male,19,15,39'),
        ("lone return", '1,"Male",19,15,39\r2,Male,19,15,39'),
    ]:
        path = land(config, f"{name}.csv", f"{HEADER}\n{line}\n".encode())
        assert not loader._one_record_per_line(path, 5), name


@pytest.mark.parametrize("quoted", [False, True], ids=["Arrow reader", "csv module"])
def test_gzipped_exports_load_exactly_as_the_plain_ones(config: Config, quoted: bool) -> None:
    import gzip

    quote = '"' if quoted else ""
    text = f"{HEADER}\n1,Male,19,15,39\n2,{quote}Female{quote},21,15\n3,Female,20,16,6\n"
    text_config = config.path.read_text().replace(
        'files = ["customers/*.csv"]', 'files = ["customers/*.csv", "customers/*.csv.gz"]', 1
    )
    config.path.write_text(text_config)
    config = load_config(config.path)
    land(config, "a.csv", text.encode())
    plain = rows(config)
    (config.raw_dir / "customers" / "a.csv").unlink()
    land(config, "a.csv.gz", gzip.compress(text.encode()))
    packed = rows(config)
    assert [{**r, "_source_file": None} for r in packed] == [
        {**r, "_source_file": None} for r in plain
    ]
    by_line = {r["_line_number"]: r for r in packed}
    assert by_line[3]["_parse_error"] == "expected 5 fields, found 4"
    assert {r["_source_file"] for r in packed} == {"customers/a.csv.gz"}


def test_small_files_are_written_in_batches_in_their_order() -> None:
    from engine.refresh.loader import in_batches

    sizes = [3, 0, 4, 9, 1, 1, 2]
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    parts = [
        pa.table({"n": pa.array(range(a, a + s), pa.int64())})
        for a, s in zip(starts, sizes, strict=True)
    ]
    batches = list(in_batches(iter(parts), rows=5))
    assert [b.num_rows for b in batches] == [7, 9, 4]  # at least 5 rows, the last what is left
    assert [v for b in batches for v in b.column("n").to_pylist()] == list(range(sum(sizes)))
    assert [b.column("n").num_chunks for b in batches] == [1, 1, 1]  # inserted as whole columns
    empty = [pa.table({"n": pa.array([], pa.int64())})]
    assert [b.num_rows for b in in_batches(iter(empty), rows=5)] == [0]  # a source with no rows
