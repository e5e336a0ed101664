"""The command line's own promises: --config before or after the command."""

from __future__ import annotations

from conftest import EXAMPLE, ProjectCopy


def test_config_may_follow_the_command(project: ProjectCopy) -> None:
    example = str(EXAMPLE / "pipeline.toml")
    default = project.run("compile", "stg_transactions_checked")
    before = project.run("--config", example, "compile", "stg_transactions_checked")
    after = project.run("compile", "stg_transactions_checked", "--config", example)
    assert default.returncode == before.returncode == after.returncode == 0, after.stderr
    assert after.stdout == before.stdout != default.stdout
