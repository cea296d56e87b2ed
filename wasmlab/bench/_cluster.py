"""The benchmark matrix on a Dask cluster: `suite(..., client=...)` runs the suite's runtime x kernel cells on the
cluster's workers and returns one result whose rows name their host, with the environment recorded per host.

By default one worker per host runs the matrix (`per="host"`: two workers of one machine would only measure
that machine twice, and compete for its cores); `per="worker"` runs it on every worker. Workers of one host run
one after another, hosts in parallel. Each worker runs the ordinary local suite (same method, same checks
against its own native build), so a row measured on a cluster means what it means on a laptop.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable
from typing import Any

from ..errors import UsageError, WasmlabError
from .results import BenchResult, frame_to_obj, table_html

CLUSTER_TIMEOUT = 3600.0  # seconds the whole matrix may take on the cluster


class ClusterSuiteResult(BenchResult):
    """One `SuiteResult` per host (`.hosts`, by label); `.tables` are the parts' tables concatenated with `host`
    and `worker` columns first (`.table` the throughput samples), `.summary` the headline rows per host."""

    kind = "cluster_suite"
    title = "the suite on a cluster"

    def __init__(self, hosts: dict[str, Any], env=None, params=None, notes=None, interrupted=False) -> None:
        import pandas as pd

        tables: dict[str, Any] = {}
        for label, result in hosts.items():
            for name, part in result.parts.items():
                frame = part.table.copy()
                frame.insert(0, "worker", result.env.get("worker", ""))
                frame.insert(0, "host", label)
                tables.setdefault("samples" if name == "throughput" else name, []).append(frame)
        tables = {name: pd.concat(frames, ignore_index=True) for name, frames in tables.items()}
        if "samples" not in tables and tables:
            tables["samples"] = next(iter(tables.values()))
        super().__init__(tables or {"samples": pd.DataFrame()}, env, params, notes, interrupted)
        self.hosts = hosts

    def summarise(self):
        import pandas as pd

        frames = [r.summary.assign(host=label) for label, r in self.hosts.items() if len(r.summary)]
        if not frames:
            return pd.DataFrame()
        summary = pd.concat(frames, ignore_index=True)
        return summary[["host", *[c for c in summary.columns if c != "host"]]]

    def figures(self):
        import plotly.graph_objects as go

        summary = self.summary
        if not len(summary) or summary["geomean_ratio"].isna().all():
            return {}
        fig = go.Figure()
        for host, rows in summary.groupby("host", sort=False):
            fig.add_trace(go.Bar(name=host, x=rows["runtime"], y=rows["geomean_ratio"]))
        fig.update_layout(
            title="wasm/native time, geometric mean over kernels, per host (1 = native speed)",
            barmode="group", yaxis_title="ratio", template="plotly_white",
        )
        return {"Ratio to native per host": fig}

    def html_sections(self):
        sections = [("Headline per host", table_html(self.summary))]
        for label, result in self.hosts.items():
            sections += [(f"{label}: {heading}", block) for heading, block in result.html_sections()]
        return sections

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "interrupted": self.interrupted,
            "params": self.params,
            "env": self.env,
            "notes": self.notes,
            "hosts": {label: result.to_dict() for label, result in self.hosts.items()},
            "summary": frame_to_obj(self.summary),
        }

    @classmethod
    def _from_dict(cls, data: dict[str, Any]) -> ClusterSuiteResult:
        hosts = {label: BenchResult.from_dict(obj) for label, obj in data.get("hosts", {}).items()}
        return cls(hosts, data.get("env"), data.get("params"), data.get("notes"), bool(data.get("interrupted")))

    def __repr__(self) -> str:
        return f"<ClusterSuiteResult {len(self.hosts)} host(s), {len(self.table)} samples>"


def suite_on_cluster(
    client: Any,
    options: dict[str, Any],
    run: Callable[[dict[str, Any], Any], dict[str, Any]],
    per: str = "host",
    timeout: float = CLUSTER_TIMEOUT,
):
    """`run(options, after)` (the local suite as plain data, labelled with its host and worker; `_suite` passes
    it, so this module does not import the suite back) on the workers of `client`'s cluster, one run per host (or
    per worker)."""
    if per not in ("host", "worker"):
        raise UsageError(f"per={per!r}: run the matrix once per 'host' or once per 'worker'")
    with client.as_current():  # futures passed between tasks belong to this client, default or not
        hosts, notes = _run_everywhere(client, options, run, per, timeout)
    env = {
        "scheduler": client.scheduler.address,
        "per": per,
        "hosts": {label: result.env for label, result in hosts.items()},
    }
    notes += [f"{label}: {note}" for label, result in hosts.items() for note in result.notes]
    return ClusterSuiteResult(hosts, env, dict(options, per=per), notes)


def _run_everywhere(client: Any, options: dict[str, Any], run: Callable, per: str, timeout: float):
    from distributed import wait

    names = client.run(socket.gethostname)  # worker address -> host name
    if not names:
        raise WasmlabError("the cluster has no workers: start some (dask worker SCHEDULER) and retry")
    by_host: dict[str, list[str]] = {}
    for address, host in sorted(names.items()):
        by_host.setdefault(host, []).append(address)
    futures = []
    for addresses in by_host.values():
        previous = None
        for address in addresses if per == "worker" else addresses[:1]:
            previous = client.submit(
                run, options, previous,
                workers=[address], allow_other_workers=False, pure=False, retries=0,
            )
            futures.append(previous)
    with contextlib.suppress(TimeoutError):  # what has not finished by then is cancelled below
        wait(futures, timeout=timeout)
    pending = {future for future in futures if not future.done()}
    for future in pending:
        future.cancel()
    hosts, notes = {}, []
    for future in futures:
        if future in pending:
            notes.append(f"a run did not finish within {timeout:g} s and was cancelled")
            continue
        error = future.exception()
        if error is not None:
            notes.append(f"a worker failed: {type(error).__name__}: {str(error).splitlines()[0]}")
            continue
        data = future.result()
        result = BenchResult.from_dict(data)
        result.env.update(host=data["host"], worker=data["worker"])
        label = data["host"] if per == "host" else f"{data['host']} {data['worker']}"
        hosts[label] = result
    if not hosts:
        raise WasmlabError(f"no worker finished the matrix: {'; '.join(notes) or 'nothing ran'}")
    return hosts, notes
