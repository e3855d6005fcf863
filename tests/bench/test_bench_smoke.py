"""The benchmark harness cannot rot: one short round against Strongroom alone (no OpenBao),
through the same code `make bench` runs. No timing assertions: the figures of a loaded
test machine mean nothing; that the harness runs and reads them does."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def test_one_short_round_against_strongroom(tmp_path):
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "strongroom", "--rounds", "1", "--duration", "1",
         "--secrets", "30", "--versions", "2", "--writes", "10", "--no-tls", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["meta"]["cores"] >= 1 and result["meta"]["python"]
    scenarios = result["passes"]["http"]
    for name in ("hot", "hot_half", "spread", "write"):
        run = scenarios[name]["Strongroom"]
        # Every request the generator sent was answered 2xx: tokens, roles, names and bodies are right.
        assert run["rounds"][0]["requests"] > 0, name
        assert run["non_2xx"] == 0 and run["socket_errors"] == 0, (name, run)
        assert run["cpu_s"] > 0 and run["peak_rss_mb"] > 0, name
    assert scenarios["bare"]["bare ASGI"]["non_2xx"] == 0
    # The overload scenario: limits on, every answer a 200 or a 429, never a 5xx.
    overload = result["extras"]["overload"]["load"]["statuses"]
    assert overload["5xx"] == 0 and overload["2xx"] > 0
    assert result["extras"]["idle_rss_after_populate"]["strongroom_mb"] > 0
    assert result["extras"]["startup"]["strongroom_first_start_s"] > 0
    # The one table reached stdout.
    assert "Strongroom vs OpenBao" in proc.stdout and "1 hot read [HTTP]" in proc.stdout


def test_the_postgresql_pass_runs_two_replicas_behind_haproxy(tmp_path, pg_cluster):
    """`--pg-only`: a private PostgreSQL, HAProxy, one then two replicas; every request answered 2xx."""
    from bench.pg_pass import available

    missing = available()
    if missing:
        pytest.skip(missing)
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "strongroom", "--pg-only", "--rounds", "1", "--duration", "1",
         "--writes", "10", "--no-agent", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    pg = json.loads(out.read_text())["postgresql"]
    for phase in ("one_replica", "two_replicas"):
        for scenario in ("hot", "write"):
            run = pg[phase][scenario]["Strongroom"]
            assert run["rounds"][0]["requests"] > 0 and run["non_2xx"] == 0 and run["socket_errors"] == 0, (phase, scenario, run)
    assert "PG, 2 replicas: 1 hot read [TLS]" in proc.stdout
