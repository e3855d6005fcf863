"""The one table (Rich) and the progress lines."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console(highlight=False, soft_wrap=True)
if not console.is_terminal or console.width < 200:
    console = Console(highlight=False, soft_wrap=True, width=220)  # the table is wide; a pipe or a narrow terminal would crush it
err = Console(stderr=True, highlight=False, soft_wrap=True)

SR, OB, BARE = "Strongroom", "OpenBao", "bare ASGI"

# scenario -> minimum Strongroom/OpenBao ratio of requests/s (issue #11's targets)
RATIO_TARGETS = {"hot": 4.0, "spread": 3.5, "write": 1.5, "login": 1.5}
CEILING_SHARE = 0.25  # hot read's share of the bare endpoint's rate (issue #11)
# the PostgreSQL pass (issue #12): hot read and durable writes through HAProxy, rotation across replicas
PG_RATIO_TARGETS = {"hot": 3.0, "write": 1.5}
TITLES = {
    "bare": "Python ceiling (bare ASGI)",
    "hot": "1 hot read",
    "hot_half": "1b hot read, 1/2 peak rate",
    "spread": "2 spread read",
    "write": "3 write (durable)",
    "login": "4 login",
}


class Log:
    def info(self, msg: str) -> None:
        err.print(f"[dim]bench:[/dim] {escape(msg)}")

    def run(self, mode: str, scenario: str, system: str, r) -> None:
        err.print(f"[dim]bench:[/dim] \\[{mode}] {scenario:<9} {system:<10} {r.rps:>9,.0f} req/s  p50 {r.p50_ms:6.2f} ms  "
                  f"p99 {r.p99_ms:7.2f} ms  cpu {r.cpu_s:5.1f} s  rss {r.peak_rss_mb:6.0f} MB"
                  + (f"  non-2xx {r.non_2xx}" if r.non_2xx else "") + (f"  socket errors {r.socket_errors}" if r.socket_errors else ""))


def fairness(meta: dict[str, Any], lines: list[str]) -> None:
    console.print(f"[bold]Strongroom benchmark[/bold]  {meta['cores']} cores ({meta['cpu']}), Python {meta['python']}"
                  + (f", OpenBao {meta['openbao']}" if meta.get("openbao") else "")
                  + f", load average {meta['load_average_at_start'][0]:.2f}")
    console.print(f"  generator {meta['generator']}: {meta['wrk']['threads']} threads, {meta['wrk']['connections']} connections, "
                  f"{meta['wrk']['duration_s']:g} s per run, {meta['rounds']} rounds; Strongroom {meta['strongroom_workers']} workers")
    for line in lines:
        console.print(f"  - {line}")


def _f(v: float | None, fmt: str = ",.0f") -> str:
    return "" if v is None else format(v, fmt)


def _verdict(ok: bool) -> str:
    return "[green]met[/green]" if ok else "[red]missed[/red]"


def table(result: dict[str, Any]) -> None:
    t = Table(title="Strongroom vs OpenBao (medians over rounds)", show_lines=False)
    for col, just in (("scenario", "left"), ("system", "left"), ("req/s", "right"), ("p50 ms", "right"),
                      ("p99 ms", "right"), ("CPU s", "right"), ("CPU µs/req", "right"), ("peak RSS MB", "right"),
                      ("SR/OB", "right"), ("note", "left")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for mode, scenarios in result["passes"].items():
        t.add_section()
        ceiling = scenarios.get("bare", {}).get(BARE, {}).get("rps")
        for sc in ("bare", "hot", "hot_half", "spread", "write", "login"):
            per = scenarios.get(sc)
            if not per:
                continue
            sr, ob = per.get(SR), per.get(OB)
            first = True
            for system in (SR, OB, BARE):
                m = per.get(system)
                if m is None:
                    continue
                label, first = (f"{TITLES[sc]} [{mode.upper()}]" if first else ""), False
                ratio, note = "", ""
                if system == SR and ob:
                    if sc == "hot_half":
                        ratio = f"p99 {sr['p99_ms'] / ob['p99_ms']:.2f}x" if ob["p99_ms"] else ""
                        note = f"at {m.get('target_rps', 0):,.0f}/s; target p99 <= 5 ms: {_verdict(m['p99_ms'] <= 5)}"
                    else:
                        r = sr["rps"] / ob["rps"] if ob["rps"] else 0
                        ratio = f"{r:.2f}x"
                        if sc in RATIO_TARGETS:
                            note = f"target >= {RATIO_TARGETS[sc]:g}x: {_verdict(r >= RATIO_TARGETS[sc])}"
                elif system == SR and sc == "hot_half":
                    note = f"at {m.get('target_rps', 0):,.0f}/s; target p99 <= 5 ms: {_verdict(m['p99_ms'] <= 5)}"
                elif system == OB and sc == "hot_half":
                    note = f"at {m.get('target_rps', 0):,.0f}/s"
                if system == SR and sc == "hot" and ceiling:
                    share = m["rps"] / ceiling
                    verdict = _verdict(share >= CEILING_SHARE)
                    note = (note + "; " if note else "") + f"{share:.0%} of ceiling (target >= {CEILING_SHARE:.0%}: {verdict})"
                if m.get("non_2xx") or m.get("socket_errors"):
                    note = (note + "; " if note else "") + f"[red]non-2xx {m['non_2xx']}, socket errors {m['socket_errors']}[/red]"
                spread = f" ({_f(m['rps_min'])}-{_f(m['rps_max'])})" if len(m.get("rounds", [])) > 1 else ""
                if system == OB and sr is None and sc == "login":
                    note = "Strongroom: n/a on plain HTTP (federation needs an https issuer); see the TLS pass"
                t.add_row(label, system,
                          _f(m["rps"]) + spread, _f(m["p50_ms"], ".2f"), _f(m["p99_ms"], ".2f"), _f(m["cpu_s"], ".1f"),
                          _f(m["cpu_us_per_request"], ",.0f"), _f(m["peak_rss_mb"], ",.0f"), ratio, note)
    ex = result.get("extras", {})
    t.add_section()
    rss = ex.get("idle_rss_after_populate")
    if rss:
        label = f"RSS, {rss['secrets']:,} secrets x {rss['versions']} versions (idle)"
        t.add_row(label, SR, "", "", "", "", "", _f(rss["strongroom_mb"]), "",
                  f"target < 150 MB: {_verdict(rss['strongroom_mb'] < 150)}; {rss.get('strongroom_processes', '?')} processes "
                  f"(supervisor + workers), PSS {_f(rss.get('strongroom_pss_mb'))} MB")
        if "openbao_mb" in rss:
            t.add_row("", OB, "", "", "", "", "", _f(rss["openbao_mb"]), "", f"PSS {_f(rss.get('openbao_pss_mb'))} MB")
    st = ex.get("startup", {})
    if st:
        first, restart = st.get("strongroom_first_start_s"), st.get("strongroom_restart_s")
        note = f"first start {first:.2f} s (fresh state dir)" if first is not None else ""
        if restart is not None:
            note += f"; restart with data {restart:.2f} s"
        worst = max(v for v in (first, restart) if v is not None) if (first or restart) else None
        t.add_row("up -> healthy /healthz", SR, "", "", "", "", "", "", "",
                  note + (f"; target < 2 s: {_verdict(worst < 2)}" if worst is not None else ""))
        if "openbao_first_start_s" in st:
            t.add_row("", OB, "", "", "", "", "", "", "",
                      f"start+init+unseal {st['openbao_first_start_s']:.2f} s"
                      + (f"; restart+unseal {st['openbao_restart_s']:.2f} s" if "openbao_restart_s" in st else ""))
    ov = ex.get("overload")
    if ov:
        load, probe = ov["load"], ov["probe"]
        s = load["statuses"]
        growth = load["extra"]["end_rss_mb"] - load["extra"]["start_rss_mb"]
        t.add_row(f"overload: {ov['connections']} conns, limits on", SR, _f(load["rps"]), _f(load["p50_ms"], ".2f"),
                  _f(load["p99_ms"], ".2f"), _f(load["cpu_s"], ".1f"), "", _f(load["peak_rss_mb"]), "",
                  f"2xx {s.get('2xx', 0):,}, 429 {s.get('429', 0):,}, 5xx {s.get('5xx', 0):,}, socket errors {load['socket_errors']}; "
                  f"RSS {growth:+.0f} MB; admitted probe p50 {_f(probe['p50_ms'], '.2f')} / p99 {_f(probe['p99_ms'], '.2f')} ms "
                  f"({probe['admitted']} admitted)")
    agent = result.get("agent", {})
    m, r = agent.get("mount"), agent.get("rotation")
    if not result["passes"]:
        pass  # the PostgreSQL pass alone (--pg-only): no mount, and its rotation has its own row
    elif isinstance(m, dict):
        t.add_row(f"5 mount --once, {m['objects']} objects [TLS]", SR, "", _f(m["p50_ms"], ".1f"), _f(m["p99_ms"], ".1f"),
                  "", "", "", "", f"{m['mounts']} mounts in-process; as a process p50 {m['process_p50_ms']:.0f} ms "
                  f"(interpreter start included); target p50 < 50 ms: {_verdict(m['p50_ms'] < 50)}")
    else:
        t.add_row("5 mount --once, 10 objects", SR, "", "", "", "", "", "", "", f"{m or 'not yet'} (target p50 < 50 ms)")
    if not result["passes"]:
        pass
    elif isinstance(r, dict):
        for i, (key, label) in enumerate((("watch", "mount --watch"), ("run", "run child env"))):
            v = r[key]
            ok = v["p99_ms"] is not None and v["p99_ms"] < 1000 and not v["missed_10s"]
            t.add_row("6 rotation: set -> new content [TLS]" if i == 0 else "", f"{SR} ({label})", "", _f(v["p50_ms"], ".0f"),
                      _f(v["p99_ms"], ".0f"), "", "", "", "",
                      f"{v['rotations']} rotations, {v['missed_10s']} over 10 s; target p99 < 1 s: {_verdict(ok)}; "
                      f"CSI driver default: {agent.get('csi_default_poll_s', 120)} s poll")
    else:
        t.add_row("6 rotation -> --watch / run", SR, "", "", "", "", "", "", "",
                  f"{r or 'not yet'} (target p99 < 1 s; CSI driver default poll {agent.get('csi_default_poll_s', 120)} s)")
    _postgresql(t, result.get("postgresql"))
    console.print(t)


def _postgresql(t: Table, pg: dict[str, Any] | None) -> None:
    """The PostgreSQL pass's rows (bench/pg_pass.py)."""
    if not pg:
        return
    t.add_section()
    if "skipped" in pg:
        t.add_row("PostgreSQL pass", SR, "", "", "", "", "", "", "", f"skipped: {pg['skipped']}")
        return
    for key, label in (("one_replica", "PG, 1 replica"), ("two_replicas", "PG, 2 replicas")):
        for sc in ("hot", "write"):
            per = (pg.get(key) or {}).get(sc)
            if not per:
                continue
            sr, ob = per.get(SR), per.get(OB)
            for i, system in enumerate((SR, OB)):
                m = per.get(system)
                if m is None:
                    continue
                ratio, note = "", ""
                if system == SR and ob and ob["rps"]:
                    r = sr["rps"] / ob["rps"]
                    ratio = f"{r:.2f}x"
                    note = f"target >= {PG_RATIO_TARGETS[sc]:g}x: {_verdict(r >= PG_RATIO_TARGETS[sc])}"
                if m.get("non_2xx") or m.get("socket_errors"):
                    note = (note + "; " if note else "") + f"[red]non-2xx {m['non_2xx']}, socket errors {m['socket_errors']}[/red]"
                t.add_row(f"{label}: {TITLES[sc]} [TLS]" if i == 0 else "", system, _f(m["rps"]), _f(m["p50_ms"], ".2f"),
                          _f(m["p99_ms"], ".2f"), _f(m["cpu_s"], ".1f"), _f(m["cpu_us_per_request"], ",.0f"),
                          _f(m["peak_rss_mb"], ",.0f"), ratio, note)
    r = (pg.get("rotation_across_replicas") or {}).get("watch")
    if r:
        ok = r["p99_ms"] is not None and r["p99_ms"] < 1000 and not r["missed_10s"]
        t.add_row("PG rotation: set via A -> mount --watch via B", SR, "", _f(r["p50_ms"], ".0f"), _f(r["p99_ms"], ".0f"),
                  "", "", "", "", f"{r['rotations']} rotations, {r['missed_10s']} over 10 s; target p99 < 1 s: {_verdict(ok)}")
