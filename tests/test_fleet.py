"""The fleet on a real Dask LocalCluster of worker processes: rollouts to every device, a worker killed for real
mid-rollout (SIGKILL) losing no device, hostile versions stopped by the limits and the gate and rolled back
everywhere. Nothing is mocked: devices are wasmtime instances of C rule modules inside Dask actors."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("distributed", reason="the fleet needs Dask: pip install 'wasmlab[fleet]'")

from wasmlab import UsageError
from wasmlab.fleet import ClusterUnavailable, Fleet, Gate, examples, parse_strategy, reading
from wasmlab.fleet.sensors import IDLE_SHARE, VIBRATION

from .conftest import need_toolchain

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rules() -> dict:
    need_toolchain("c")
    sources = {
        "v1": examples.RULES_V1,
        "v2": examples.RULES_V2,
        "traps": examples.TRAPS,
        "loops": examples.LOOPS,
        "memory_bomb": examples.MEMORY_BOMB,
    }
    return {name: examples.build(source, name) for name, source in sources.items()}


@pytest.fixture(scope="module")
def cluster():
    """One LocalCluster (2 worker processes, loopback) shared by the tests that do not kill a worker."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                     dashboard_address="127.0.0.1:0")
        as local,
        Client(local) as client,
    ):
        yield client


def test_readings_are_a_pure_function_of_seed_device_and_index() -> None:
    assert [reading(7, 4, i) for i in range(50)] == [reading(7, 4, i) for i in range(50)]
    assert [reading(7, 4, i) for i in range(50)] != [reading(8, 4, i) for i in range(50)]
    kinds = {reading(0, device, 0)[0] for device in range(3)}
    assert kinds == {0, 1, 2}
    idle = sum(reading(0, 1, i) == (VIBRATION, 0.0) for i in range(4000)) / 4000
    assert IDLE_SHARE / 2 < idle < IDLE_SHARE * 2  # idle machines read 0: what the trapping version trips on


def test_strategies_parse_and_bad_ones_say_how() -> None:
    assert parse_strategy("all") == [100.0]
    assert parse_strategy("canary:5,25,100") == [5.0, 25.0, 100.0]
    assert parse_strategy("canary:10,50") == [10.0, 50.0, 100.0]  # a rollout that passes reaches everyone
    for bad in ("canary:50,10", "canary:0,100", "canary:x", "blue-green", "canary:"):
        with pytest.raises(UsageError, match="canary:5,25,100"):
            parse_strategy(bad)


def test_a_module_without_the_rule_signature_is_refused(compile_or_skip) -> None:
    wrong = compile_or_skip("int decide(int sensor, int value) { return value > sensor; }", "c")
    with pytest.raises(UsageError, match=r"decide is \(i32, i32\) -> i32.*must be \(i32, f64\) -> i32"):
        Fleet(wrong, devices=10)


def test_an_unreachable_scheduler_is_one_line() -> None:
    need_toolchain("c")
    with pytest.raises(ClusterUnavailable, match=r"no Dask scheduler answers at tcp://127.0.0.1:9 .*dask scheduler"):
        Fleet(examples.build(examples.RULES_V1), devices=10, scheduler="tcp://127.0.0.1:9")


def test_a_canary_rollout_reaches_every_one_of_1000_devices(rules, cluster) -> None:
    with Fleet(rules["v1"], devices=1000, client=cluster) as fleet:
        before = fleet.run(readings=10)
        assert int(before["readings"].sum()) == 10_000  # every device decided every reading
        report = fleet.rollout(rules["v2"], "canary:5,25,100")
        census = fleet.census()
    new = rules["v2"].sha256
    assert not report.rolled_back and report.caught is None and report.lost == 0
    assert report.versions == {new: 1000}
    assert sorted(census) == list(range(1000)) and {sha for _, sha in census.values()} == {new}
    assert len({worker for worker, _ in census.values()}) == 2  # spread over both workers
    assert [(w.percent, w.devices, w.errors) for w in report.waves] == [(5, 50, 0), (25, 200, 0), (100, 750, 0)]
    # the canary compared both versions on the same readings: v2 changes a few decisions, not most
    assert all(w.compared == 20 * w.devices and 0 < w.changed < 0.25 * w.compared for w in report.waves)
    # the module went to each worker once, not to each device
    assert report.modules_shipped == 2 and report.bytes_shipped == 2 * rules["v2"].size
    p = report.propagation_ms
    assert 0 < p["p50"] <= p["p99"] <= p["p100"] <= report.seconds * 1000
    assert set(report.switch_ms) == set(range(1000))
    mix = report.version_mix()
    final = mix[mix["ms"] == mix["ms"].max()].set_index("version")["devices"].to_dict()
    assert final == {report.label(rules["v1"].sha256): 0, report.label(new): 1000}
    assert len(report.figure().data) == 2 and len(report.wave_figure().data) == 1
    data = report.to_dict()
    assert data["cluster"]["scheduler"] == cluster.scheduler.address and len(data["cluster"]["workers"]) == 2
    assert [w["percent"] for w in data["waves"]] == [5, 25, 100]


def test_a_worker_killed_mid_rollout_loses_no_device(rules) -> None:
    with Fleet(rules["v1"], devices=1000, workers=2) as fleet:
        pids = {address: host.info["pid"] for address, host in fleet._hosts.items()}
        report = fleet.rollout(rules["v2"], "canary:10,50,100", kill_worker_at=0.4)
        census = fleet.census()
        killed = report.faults[0]["killed"]
        with pytest.raises(ProcessLookupError):  # really dead (the nanny may start a new worker in its place)
            os.kill(pids[killed], 0)
        assert killed not in fleet.workers
    assert 0.4 <= report.faults[0]["at_share"] < 1
    lost = next(f for f in report.faults if f.get("worker") == killed)
    assert lost["devices"] > 0 and sum(lost["recreated_on"].values()) == lost["devices"]
    assert killed not in lost["recreated_on"]
    assert report.lost == 0 and sorted(census) == list(range(1000))
    assert report.versions == {rules["v2"].sha256: 1000} and not report.rolled_back


def test_a_version_that_traps_is_rolled_back_on_every_device(rules, cluster) -> None:
    with Fleet(rules["v1"], devices=400, client=cluster) as fleet:
        report = fleet.rollout(rules["traps"], "all")
        versions = fleet.versions()
    assert report.rolled_back and report.lost == 0
    assert "trap: integer divide by zero" in report.caught and "the gate allows 0%" in report.caught
    assert report.switch_ms  # some devices had passed their canary and ran the bad version...
    assert versions == report.versions == {rules["v1"].sha256: 400}  # ...and every one is back on v1
    wave = report.waves[0]
    assert wave.skipped > 0  # the gate had failed: the rest of the wave was not put at risk


@pytest.mark.parametrize(
    ("version", "caught"),
    [("traps", "trap: integer divide by zero"), ("loops", "limit: time"), ("memory_bomb", "limit: memory")],
)
def test_hostile_versions_are_stopped_by_limits_and_the_gate(rules, cluster, version, caught) -> None:
    with Fleet(rules["v1"], devices=200, client=cluster, timeout=0.1) as fleet:
        report = fleet.rollout(rules[version], "canary:5,25,100")
    assert report.rolled_back and len(report.waves) == 1  # caught in the first wave, 5 % of the fleet
    assert caught in report.caught
    assert report.versions == {rules["v1"].sha256: 200} and report.lost == 0
    assert report.waves[0].seconds < 5  # one time limit per worker, then the wave stops


def test_a_gate_on_changed_decisions_and_a_cluster_by_scheduler_address(rules, cluster) -> None:
    strict = Gate(max_changed=0.001)  # v2 changes a few percent of decisions: too many for this gate
    with Fleet(rules["v1"], devices=100, scheduler=cluster.scheduler.address) as fleet:
        report = fleet.rollout(rules["v2"], "canary:50,100", gate=strict)
        assert fleet.versions() == {rules["v1"].sha256: 100}
    assert report.rolled_back and "decided otherwise than the old version" in report.caught


def _sources(tmp_path, *names: str) -> list[str]:
    need_toolchain("c")
    sources = {"v1": examples.RULES_V1, "v2": examples.RULES_V2, "traps": examples.TRAPS}
    paths = []
    for name in names:
        path = tmp_path / f"{name}.c"
        path.write_text(sources[name])
        paths.append(str(path))
    return paths


def test_cli_rollout_json_names_every_device_and_its_version(tmp_path, cluster, capsys) -> None:
    import json

    from wasmlab.cli import main

    old, new = _sources(tmp_path, "v1", "v2")
    code = main(["fleet", "rollout", old, new, "--devices", "300", "--strategy", "canary:10,100",
                 "--scheduler", cluster.scheduler.address, "--json"])
    out = capsys.readouterr()
    assert code == 0 and out.err == ""
    data = json.loads(out.out)
    assert data["devices"] == 300 and data["lost"] == 0 and data["rolled_back"] is False
    assert data["cluster"]["scheduler"] == cluster.scheduler.address and len(data["cluster"]["workers"]) == 2
    assert list(data["versions"].values()) == [300] and len(next(iter(data["versions"]))) == 64
    assert [(w["percent"], w["errors"]) for w in data["waves"]] == [(10, 0), (100, 0)]
    assert all(w["seconds"] > 0 for w in data["waves"])
    assert data["propagation_ms"]["p50"] <= data["propagation_ms"]["p99"]


def test_cli_rolled_back_exits_1_with_what_the_gate_caught(tmp_path, cluster, capsys) -> None:
    import json

    from wasmlab.cli import main

    old, bad = _sources(tmp_path, "v1", "traps")
    code = main(["fleet", "rollout", old, bad, "--devices", "200", "--scheduler", cluster.scheduler.address, "--json"])
    out = capsys.readouterr()
    assert code == 1
    assert out.err.count("\n") == 1 and out.err.startswith("wasmlab: rolled back: wave 5%: ")
    assert "trap: integer divide by zero" in out.err
    data = json.loads(out.out)  # the report is printed all the same
    assert data["rolled_back"] is True and len(data["versions"]) == 1 and sum(data["versions"].values()) == 200
    code = main(["fleet", "rollout", old, bad, "--devices", "10", "--strategy", "canary:50,10"])
    assert code == 2 and "canary:5,25,100" in capsys.readouterr().err
