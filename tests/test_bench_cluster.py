"""The benchmark matrix on a real Dask LocalCluster (worker processes): every row names the host and the worker
that measured it, each worker's environment is recorded, checksums are checked on the workers as they are here;
without a client the suite runs in this process as before."""

from __future__ import annotations

import json
import socket

import pytest

pytest.importorskip("distributed", reason="the matrix on a cluster needs Dask: pip install 'wasmlab[fleet]'")

from wasmlab import bench
from wasmlab.bench.results import BenchResult

pytestmark = pytest.mark.slow
OPTIONS = {"quick": True, "samples": 3, "include": "throughput", "seed": 1}


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                     dashboard_address="127.0.0.1:0") as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client


def test_the_matrix_runs_on_every_worker_and_rows_name_their_host(client) -> None:
    workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    result = bench.suite("wasmtime", "fib", client=client, per="worker", **OPTIONS)
    table = result.table
    assert sorted(table["worker"].unique()) == workers
    assert set(table["host"].str.split().str[0]) == {socket.gethostname()}
    assert set(table["runtime"]) == {"wasmtime", "native"} and set(table["kernel"]) == {"fib"}
    assert table["correct"].all()  # each worker checked its checksums against its own native build
    assert (table.groupby("worker").size() >= 2 * OPTIONS["samples"]).all()
    hosts = result.env["hosts"]
    assert sorted(env["worker"] for env in hosts.values()) == workers
    assert all(env["cpu"] and env["cores"]["usable"] >= 1 and "wasmtime" in env["runtimes"] for env in hosts.values())
    summary = result.summary
    assert len(summary) == 2 and summary.columns[0] == "host" and (summary["geomean_ratio"] > 0).all()
    assert list(result.figures()) == ["Ratio to native per host"]
    again = BenchResult.from_json(result.to_json())  # the JSON round trip keeps every host
    assert type(again) is type(result) and len(again.table) == len(table) and set(again.hosts) == set(result.hosts)


def test_one_run_per_host_by_default_and_the_cli_takes_a_scheduler(client, capsys) -> None:
    from wasmlab.cli import main

    code = main(["bench", "suite", "--scheduler", client.scheduler.address, "--runtimes", "wasmtime",
                 "--kernels", "fib", "--quick", "--samples", "3", "--include", "throughput", "--json",
                 "--no-progress"])
    out = capsys.readouterr()
    assert code == 0, out.err
    data = json.loads(out.out)
    assert data["kind"] == "cluster_suite" and list(data["hosts"]) == [socket.gethostname()]  # one machine
    assert data["env"]["scheduler"] == client.scheduler.address
    summary = data["summary"]
    assert summary["columns"][0] == "host" and [row[0] for row in summary["rows"]] == [socket.gethostname()]
    local = bench.suite("wasmtime", "fib", **OPTIONS, progress=False)  # no client: here, as before
    assert type(local).__name__ == "SuiteResult" and "host" not in local.table.columns
