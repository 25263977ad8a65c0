"""The benchmark's table (stdout) and chart (PNG)."""

from pathlib import Path


def table(results: dict, verdicts: list[tuple[str, str, bool]]) -> str:
    machine = results["machine"]
    worker = results["worker"]
    thr = results["throughput"]
    lat = results["latency"]
    cost = results["cost"]
    rest = results["rest"]
    rows = [
        f"Machine: {machine['cpu_cores']} cores ({machine['cpu_model']}), Python {machine['python']}, "
        f"PostgreSQL {machine['postgresql']}, Redis {machine['redis']}, Django {machine['Django']}, "
        f"Celery {machine['celery']}",
        f"Load average at start {machine['load_average_at_start']}, "
        f"at end {machine.get('load_average_at_end')}",
        f"Worker: {worker['command']} | pool {worker['pool']}, concurrency {worker['concurrency']}, "
        f"prefetch_count {worker['prefetch_count']}, settings {worker['settings']}",
        "",
        f"{'Throughput (same worker, same queue)':<44}{'median/s':>10}  runs/s (producer send time)",
    ]
    for kind, label in (
        ("noop", "Celery no-op task"),
        ("insert", "Celery task: one INSERT (JSON row)"),
        ("pipeline", "Pipeline, round robin (tickets/s)"),
        ("pipeline_load_balanced", "Pipeline, load balanced (tickets/s)"),
    ):
        entry = thr[kind]
        runs = ", ".join(f"{r['per_second']:.0f} ({r['send_seconds']:.1f}s)" for r in entry["runs"])
        count = entry["runs"][0]["messages"]
        rows.append(f"  {label + f' x{count}':<42}{entry['per_second_median']:>10.1f}  {runs}")
    rows += [
        f"  {'pipeline / one-INSERT ratio (median)':<42}{thr['pipeline_vs_insert_ratio']:>10.0%}  "
        + ", ".join(f"{r:.0%}" for r in thr["pipeline_vs_insert_ratio_per_round"]),
        f"  {'load balanced / one-INSERT ratio (median)':<42}{thr['load_balanced_vs_insert_ratio']:>10.0%}  "
        + ", ".join(f"{r:.0%}" for r in thr["load_balanced_vs_insert_ratio_per_round"]),
        "",
        f"Latency, {lat['tickets']} tickets one at a time, send -> task committed:",
        f"  p50 {lat['p50_ms']:.1f} ms   p95 {lat['p95_ms']:.1f} ms   p99 {lat['p99_ms']:.1f} ms   "
        f"max {lat['max_ms']:.1f} ms",
        "",
        "Cost per allocated ticket:",
        f"  TTS calls {thr['tts_calls_per_ticket']:g} (workers, /_stats)   SQL queries "
        f"{cost['sql_queries_per_ticket_max']} max, {cost['sql_queries_per_ticket_mean']:g} mean "
        f"({cost['tickets']} tickets, CaptureQueriesContext, BEGIN/COMMIT included; "
        "+1 health-check SELECT 1 per message on a worker)",
        "",
        f"REST ({rest['server']}, {rest['clients']} concurrent clients, {rest['tasks_in_database']} tasks, "
        f"authenticated: {rest['authenticated']}):",
        f"  {'endpoint':<40}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'queries':>9}",
    ]
    for name in ("list_page_50", "floor_page_50", "detail"):
        entry = rest[name]
        rows.append(
            f"  {entry['path']:<40}{entry['per_second']:>8.0f}{entry['p50_ms']:>9.1f}{entry['p99_ms']:>9.1f}"
            f"{entry.get('queries_per_request', '')!s:>9}"
        )
    rows.append(f"  list / floor (values(), no DRF): {rest['list_vs_floor_ratio']:.0%}")
    rows.append(f"  list queries by page size: {rest['list_queries_by_page_size']}")
    if "scale" in results:
        from bench import scale

        rows += ["", scale.table(results["scale"])]
    rows += ["", "Targets:"]
    for target, measured, ok in verdicts:
        rows.append(f"  {'PASS' if ok else 'FAIL'}  {target:<52} {measured}")
    return "\n".join(rows)


def draw(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    thr = results["throughput"]
    lat = results["latency"]
    rest = results["rest"]
    with_scale = "scale" in results
    fig, axes = plt.subplots(
        1,
        4 if with_scale else 3,
        figsize=(22 if with_scale else 16, 5),
        gridspec_kw={"width_ratios": [1, 1.4, 1, 1.6] if with_scale else [1, 1.4, 1]},
    )
    ax_thr, ax_lat, ax_rest = axes[:3]
    if with_scale:
        from bench import scale

        scale.draw(results["scale"], axes[3])

    labels = ["no-op\ntask", "one-INSERT\ntask", "pipeline,\nround robin", "pipeline,\nload balanced"]
    values = [thr[k]["per_second_median"] for k in ("noop", "insert", "pipeline", "pipeline_load_balanced")]
    bars = ax_thr.bar(labels, values, color=["#9e9e9e", "#5c6bc0", "#26a69a", "#66bb6a"])
    ax_thr.bar_label(bars, fmt="%.0f")
    ax_thr.tick_params(axis="x", labelsize=8)
    ax_thr.margins(y=0.15)
    ax_thr.set_ylabel("messages (tickets) per second")
    ax_thr.set_title(f"Throughput (pipeline = {thr['pipeline_vs_insert_ratio']:.0%} of INSERT)")

    samples = lat["samples_ms"]
    ax_lat.hist(samples, bins=60, color="#26a69a", alpha=0.8)
    for name, color in (("p50", "#1b5e20"), ("p95", "#f57f17"), ("p99", "#b71c1c")):
        value = lat[f"{name}_ms"]
        ax_lat.axvline(value, color=color, linestyle="--", label=f"{name} {value:.1f} ms")
    ax_lat.axvline(results["targets"]["latency_p99_ms_max"], color="black", linewidth=1, label="p99 target")
    ax_lat.set_xlabel("send -> task committed (ms)")
    ax_lat.set_ylabel("tickets")
    ax_lat.set_title(f"Latency at low load ({lat['tickets']} tickets, one at a time)")
    ax_lat.legend()

    names = ["list\n(page of 50)", "floor\n(values())", "detail"]
    keys = ("list_page_50", "floor_page_50", "detail")
    rates = [rest[k]["per_second"] for k in keys]
    bars = ax_rest.bar(names, rates, color=["#8d6e63", "#bdbdbd", "#ffa726"])
    ax_rest.bar_label(
        bars,
        labels=[f"{r:.0f}/s\np99 {rest[k]['p99_ms']:.0f} ms" for r, k in zip(rates, keys, strict=True)],
    )
    ax_rest.margins(y=0.2)
    ax_rest.set_ylabel("requests per second")
    ax_rest.set_title(f"REST under gunicorn, {rest['clients']} clients")

    machine = results["machine"]
    fig.suptitle(
        f"workflow_api benchmark {results['started_at']} - {machine['cpu_cores']} cores, "
        f"Python {machine['python']}, PostgreSQL {machine['postgresql']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def draw_scale(results: dict, path: Path) -> None:
    """The chart of a scale-only run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench import scale

    fig, ax = plt.subplots(figsize=(10, 6))
    scale.draw(results["scale"], ax)
    machine = results["machine"]
    fig.suptitle(
        f"workflow_api scale benchmark {results['started_at']} - {machine['cpu_cores']} cores, "
        f"PostgreSQL {machine['postgresql']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
