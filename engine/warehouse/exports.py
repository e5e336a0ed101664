"""Write a layer's tables as Parquet or CSV files for tools that read files.

Each file is written under a temporary name and renamed into place, so a reader of the export
folder sees the old file or the new one, never half of one.
"""

from __future__ import annotations

from pathlib import Path

from engine.warehouse import statements
from engine.warehouse.atomic_files import replace_atomically
from engine.warehouse.published import connect_read_only

EXTENSIONS = {"parquet": "parquet", "csv": "csv"}


def export_layer(warehouse: Path, layer: str, file_format: str, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    with connect_read_only(warehouse) as con:
        tables = [
            row[0]
            for row in con.execute(
                f"select name from {statements.RELATIONS} "
                "where database_name = current_database() and schema_name = ? order by 1",
                [layer],
            ).fetchall()
        ]
        for table in tables:
            target = directory / f"{table}.{EXTENSIONS[file_format]}"
            replace_atomically(
                target,
                lambda partial, t=table: con.execute(
                    statements.copy_to(layer, t, partial, file_format)
                ),
            )
            written.append(target)
    return written
