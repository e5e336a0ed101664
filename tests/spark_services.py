"""Spark's own servers, started from the pyspark wheel as separate processes on 127.0.0.1: a
standalone master and workers, a Hive metastore service, the Thrift (JDBC) server, and beeline
as the JDBC client. Each context manager stops what it started, also when the test fails."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyspark

SPARK_HOME = Path(pyspark.__file__).parent
BIN = SPARK_HOME / "bin"
HOST = "127.0.0.1"
PROMPT = re.compile(r"^\d+: jdbc:hive2://\S+> ")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, "SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": HOST, **(extra or {})}


def _tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


@contextlib.contextmanager
def java_process(
    args: Sequence[str],
    log: Path,
    ready: str,
    cwd: Path,
    seconds: float = 120,
    environment: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """A JVM in its own process group, ready once ``ready`` is in its log; stopped (the whole
    group) on leaving, by SIGTERM and, after 30 s, SIGKILL."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(args),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=_environment(environment),
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + seconds
        while ready not in log.read_text(errors="replace"):
            if process.poll() is not None:
                raise RuntimeError(f"{args[1]} exited {process.returncode}:\n{_tail(log)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{args[1]} not ready in {seconds} s:\n{_tail(log)}")
            time.sleep(0.25)
        yield process
    finally:
        _stop_group(process)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


@contextlib.contextmanager
def standalone_cluster(folder: Path, workers: int = 2) -> Iterator[str]:
    """A master and ``workers`` workers (1 core, 1 GiB and a work folder each); the master's
    URL. The workers' folders are ``folder/worker-<n>``."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    master_url = f"spark://{HOST}:{port}"
    # No REST submission server (port 6066 by default) and web UIs on free ports.
    quiet = {"SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false"}
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            java_process(
                [str(BIN / "spark-class"), "org.apache.spark.deploy.master.Master", "--host",
                 HOST, "--port", str(port), "--webui-port", str(free_port())],
                folder / "master.log", "I have been elected leader", folder, environment=quiet,
            )
        )  # fmt: skip
        for number in range(1, workers + 1):
            work = folder / f"worker-{number}"
            work.mkdir(exist_ok=True)
            stack.enter_context(
                java_process(
                    [str(BIN / "spark-class"), "org.apache.spark.deploy.worker.Worker", "--host",
                     HOST, "--cores", "1", "--memory", "1g", "--work-dir", str(work),
                     "--webui-port", str(free_port()), master_url],
                    folder / f"worker-{number}.log", "Successfully registered with master",
                    folder,
                )
            )  # fmt: skip
        yield master_url


def metastore_conf(derby_folder: Path | None = None, uri: str | None = None) -> list[str]:
    """Hive settings for a JVM whose catalog is an embedded Derby folder or a service."""
    if uri is not None:
        return ["--conf", f"spark.hadoop.hive.metastore.uris={uri}"]
    assert derby_folder is not None
    return [
        "--conf",
        f"spark.hadoop.javax.jdo.option.ConnectionURL=jdbc:derby:;databaseName="
        f"{derby_folder / 'metastore_db'};create=true",
        "--driver-java-options",
        f"-Dderby.system.home={derby_folder}",
    ]


@contextlib.contextmanager
def metastore_service(folder: Path) -> Iterator[str]:
    """A Hive metastore service over a Derby database in ``folder``; its thrift:// URI."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    database = folder / "metastore_db"
    args = [
        str(BIN / "spark-class"), "org.apache.hadoop.hive.metastore.HiveMetaStore", "-p", str(port),
        # Hive's asynchronous logging needs a jar the wheel does not ship.
        "--hiveconf", "hive.async.log.enabled=false",
        "--hiveconf", f"javax.jdo.option.ConnectionURL=jdbc:derby:;databaseName={database};"
        "create=true",
        "--hiveconf", "datanucleus.schema.autoCreateAll=true",
        "--hiveconf", "hive.metastore.schema.verification=false",
    ]  # fmt: skip
    log = folder / "metastore.log"
    with java_process(args, log, "", folder):
        _wait_for_port(port, log)
        yield f"thrift://{HOST}:{port}"


def _wait_for_port(port: int, log: Path, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while True:
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on {port} after {seconds} s:\n{_tail(log)}")
        time.sleep(0.25)


@contextlib.contextmanager
def _server(
    folder: Path, main_class: str, master: str, options: list[str], port: int
) -> Iterator[None]:
    """A server application submitted from the wheel, until it listens on ``port``."""
    folder.mkdir(parents=True, exist_ok=True)
    args = [
        str(BIN / "spark-submit"), "--master", master, "--class", main_class,
        "--conf", "spark.ui.enabled=false",
        "--conf", f"spark.sql.warehouse.dir={folder / 'warehouse'}",
        *options, "spark-internal",
    ]  # fmt: skip
    log = folder / "server.log"
    with java_process(args, log, "", folder):
        _wait_for_port(port, log)
        yield


@contextlib.contextmanager
def thrift_server(folder: Path, metastore: list[str]) -> Iterator[int]:
    """The Spark Thrift server (HiveServer2 protocol) on a free port, with the catalog
    ``metastore`` (from metastore_conf); its port."""
    port = free_port()
    options = [
        "--conf", "spark.sql.catalogImplementation=hive",
        "--conf", "spark.sql.timestampType=TIMESTAMP_NTZ",
        *metastore,
        "--hiveconf", f"hive.server2.thrift.port={port}",
        "--hiveconf", f"hive.server2.thrift.bind.host={HOST}",
    ]  # fmt: skip
    thrift = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"
    with _server(folder, thrift, "local[1]", options, port):
        yield port


@contextlib.contextmanager
def connect_server(folder: Path) -> Iterator[str]:
    """A Spark Connect server on ``local[2]`` and a free port; its sc:// URL."""
    port = free_port()
    options = [
        "--conf", f"spark.connect.grpc.binding.address={HOST}",
        "--conf", f"spark.connect.grpc.binding.port={port}",
    ]  # fmt: skip
    connect = "org.apache.spark.sql.connect.service.SparkConnectServer"
    with _server(folder, connect, "local[2]", options, port):
        yield f"sc://{HOST}:{port}"


def beeline(port: int, sql: str, timeout: float = 120) -> list[dict[str, str]]:
    """The rows ``sql`` (one statement) returns through beeline, a real JDBC client."""
    done = subprocess.run(
        [str(BIN / "beeline"), "-u", f"jdbc:hive2://{HOST}:{port}", "-n", "test",
         "--silent=true", "--showHeader=true", "--outputformat=csv2", "-e", sql],
        capture_output=True, text=True, timeout=timeout,
        # beeline's csv2 does not quote a value with a comma unless told to.
        env=_environment({"JAVA_TOOL_OPTIONS": "-Ddisable.quoting.for.sv=false"}),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    # beeline prints its prompt (``0: jdbc:hive2://…> ``) before the header, even when silent.
    lines = [PROMPT.sub("", line) for line in done.stdout.splitlines()]
    lines = [line for line in lines if line.strip()]
    return list(csv.DictReader(io.StringIO("\n".join(lines))))
