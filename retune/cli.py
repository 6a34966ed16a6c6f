"""The `retune` command line: run the DAG or one flow, anonymize a file, read run history and the registry."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from retune.errors import DISK_FULL_ERRNOS, RetuneError

app = typer.Typer(
    help="Continuous fine-tuning for production LLMs: ingest → anonymize → validate → version → fine-tune → "
    "export → evaluate → promote → drift, as one Prefect DAG.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="The YAML config every knob lives in.")]
SourceOpt = Annotated[
    list[str] | None,
    typer.Option("--source", "-s", help="A path, glob or URL (s3://..., lakefs://...) to ingest instead of the "
                 "configured sources (repeatable)."),
]


def main() -> None:
    """Entry point: user mistakes print one line and exit 1; bugs keep their traceback."""
    # Registered first, so it runs after every exit hook Prefect and the rest register while the command runs.
    atexit.register(_exit_without_teardown)
    try:
        _main()
    except SystemExit as exc:
        _exit_status["code"] = _exit_code(exc.code)
        raise
    except KeyboardInterrupt:
        _exit_status["code"] = 130
        raise
    except BaseException:
        _exit_status["code"] = 1
        raise


_exit_status = {"code": 0}


def _exit_code(code: object) -> int:
    """The process status Python gives `sys.exit(code)`: None is 0, a message is 1."""
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def _exit_without_teardown() -> None:
    """End the process once every exit hook has run, without the interpreter's teardown of its modules.

    A command that ran a flow holds Prefect, pydantic, pyarrow and their thousands of objects; freeing them one by
    one at exit took 0.45-0.65 s on this machine, a quarter of a `retune run` that finds nothing new. Nothing is
    lost by skipping it: Prefect's events and logs are drained by hooks that ran before this one, files are
    closed by the code that wrote them, and the logging handlers and standard streams are flushed here. Only the
    hooks registered before `main()` (logging's, flushed here) would have run after this one.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing left to deliver
            pass
    os._exit(_exit_status["code"])


def _main() -> None:
    # Offline machines: Prefect's telemetry and Evidently's usage tracking would only fail on DNS.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    try:
        app()
    except RetuneError as exc:
        err.print(f"[bold red]error:[/] {exc}", soft_wrap=True, markup=True, highlight=False)
        sys.exit(1)
    except OSError as exc:
        # A full disk is the user's to fix wherever the write happened (a library's own files included).
        if exc.errno not in DISK_FULL_ERRNOS:
            raise
        where = f" writing {exc.filename}" if exc.filename else ""
        err.print(f"[bold red]error:[/] disk full: no space left on device{where} ({os.strerror(exc.errno)})",
                  soft_wrap=True, markup=True, highlight=False)  # fmt: skip
        sys.exit(1)


def _check_config(config: Path) -> None:
    """Fail fast, before Prefect starts, with a one-line message; then keep user errors one line in logs too."""
    from retune.config import load_config, preflight

    preflight(load_config(config))
    _quiet_user_errors()


class _NoTracebackForUserErrors(logging.Filter):
    """Prefect logs every failed task with its traceback; for a RetuneError the message says it all."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], RetuneError):
            record.exc_info, record.exc_text = None, None
        return True


def _quiet_user_errors() -> None:
    import prefect.logging  # noqa: F401  (configures Prefect's handlers, which the filter attaches to)

    loggers = [logging.getLogger()] + [
        logging.getLogger(name) for name in list(logging.root.manager.loggerDict) if name.startswith("prefect")
    ]
    for handler in {h for lg in loggers for h in getattr(lg, "handlers", [])}:
        handler.addFilter(_NoTracebackForUserErrors())


def _print_rows(title: str, rows: list[tuple[str, str]]) -> None:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")  # paths must stay whole: people copy them
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)


ForceOpt = Annotated[bool, typer.Option(help="Fine-tune even if too little new data arrived.")]


@app.command()
def run(config: ConfigOpt = Path("retune.yaml"), source: SourceOpt = None, force: ForceOpt = False) -> None:
    """Run the whole loop once: ingest new data, report drift, fine-tune, export, evaluate, promote if better."""
    _check_config(config)
    from flows.run import run_flow  # Prefect and the ML stack load only when a flow runs

    rows = run_flow(str(config), source or None, force)
    _print_rows("retune run", rows)


@app.command()
def ingest(config: ConfigOpt = Path("retune.yaml"), source: SourceOpt = None) -> None:
    """Ingest, anonymize, validate and publish new conversations to the store's main branch."""
    _check_config(config)
    from flows.ingest import ingest_flow

    result = ingest_flow(str(config), source or None)
    r = result.report
    near = f"; {r.near_duplicates} near-duplicate(s) found" if r.near_duplicates else ""
    skipped = f"; {len(r.skipped_files)} file(s) skipped (already ingested)" if r.skipped_files else ""
    console.print(
        f"in {r.records_in} = kept {r.kept} + quarantined {r.quarantined} + duplicates {r.duplicates}{near}"
        f"{skipped}; " + (f"main at {result.dataset.commit[:12]}" if result.dataset else "nothing new to publish")
    )


@app.command()
def retrain(
    config: ConfigOpt = Path("retune.yaml"),
    dataset_commit: Annotated[str | None, typer.Option(help="Train on this commit instead of main's head.")] = None,
    force: ForceOpt = False,
) -> None:
    """Fine-tune a candidate on a dataset commit and promote it if it beats production."""
    _check_config(config)
    from flows.retrain import retrain_flow
    from retune.policy import RetrainDecision

    result = retrain_flow(str(config), dataset_commit, force)
    if isinstance(result, RetrainDecision):
        console.print(f"no fine-tune: {result.reason}")
        return
    p = result.promotion
    console.print(f"{p.version}: {'promoted' if p.promoted else 'rejected'} — {p.reason}")


@app.command()
def monitor(config: ConfigOpt = Path("retune.yaml")) -> None:
    """Write a drift report of the data merged since the production model was trained."""
    _check_config(config)
    from flows.monitor import monitor_flow

    result = monitor_flow(str(config))
    console.print(result.reason + (f" — {result.result.html_path}" if result.result else ""))


@app.command()
def anonymize(
    input: Annotated[str, typer.Argument(help="A JSONL file, one record per line; - reads standard input.")],
    output: Annotated[str, typer.Option("--output", "-o", help="Where to write the anonymized JSONL; - writes "
                                        "standard output (the summary then goes to standard error).")],
    fields: Annotated[
        str, typer.Option(help="Comma-separated fields to anonymize; dotted paths reach into lists, "
                               "e.g. messages.content.")
    ],
    rejected: Annotated[
        str | None, typer.Option(help="Where lines that are not JSON objects go, with their reason (raw data: "
                                      "mode 0600). Default: beside the output, OUT.rejected.jsonl; with --output -, "
                                      "rejected.jsonl here.")
    ] = None,
    key_env: Annotated[str, typer.Option(help="Environment variable holding the pseudonymization key.")] = (
        "RETUNE_PII_KEY"
    ),
    replacement: Annotated[
        str, typer.Option(help="placeholder: <EMAIL_3f2a1b9c>; surrogate: a realistic fake of the same shape.")
    ] = "placeholder",
) -> None:
    """Replace personal data in some fields of a JSONL file with keyed pseudonyms; everything else is kept.

    Records keep their order and every other field. A line that is not a JSON object (invalid JSON or UTF-8,
    blank) is not written to the output: it goes to the rejected file with its reason, and is counted.
    """
    from retune import pii
    from retune.anonymize_file import RejectedFile, anonymize_jsonl, rejected_path

    if input != "-" and not Path(input).is_file():
        raise RetuneError(f"input file not found: {input}")
    if input != "-" and output != "-" and Path(output).exists() and Path(output).samefile(input):
        raise RetuneError(f"--output is the input file {input}: writing it would erase what is still to be read")
    key, is_dev_key = pii.load_key(key_env)
    if is_dev_key:
        err.print(f"[yellow]warning:[/] {key_env} is not set: using the development key (pseudonyms not secret)")
    options = pii.PiiOptions(replacement=replacement)  # a wrong value is a one-line ConfigError
    reject = RejectedFile(rejected_path(output, rejected))
    with contextlib.ExitStack() as files:
        src = sys.stdin.buffer if input == "-" else files.enter_context(open(input, "rb"))
        dst = sys.stdout.buffer if output == "-" else files.enter_context(open(output, "wb"))
        files.callback(reject.close)
        report = anonymize_jsonl(src, dst, reject, [f.strip() for f in fields.split(",") if f.strip()],
                                 pii.Pseudonymizer(key), options=options)  # fmt: skip
    found = ", ".join(f"{k} {v}" for k, v in sorted(report.found.items())) or "no personal data found"
    where = "standard output" if output == "-" else output
    set_aside = ", ".join(f"{reason} {n}" for reason, n in report.reasons.most_common())
    (err if output == "-" else console).print(
        f"{report.lines} lines = {report.anonymized} anonymized + {report.rejected} rejected → {where}; replaced "
        f"{found}" + (f"; rejected lines in {reject.path} ({set_aside})" if report.rejected else ""),
        soft_wrap=True, highlight=False, markup=False,
    )


@app.command()
def watch(config: ConfigOpt = Path("retune.yaml")) -> None:
    """Announce files that landed in the configured landing locations (once per content)."""
    _check_config(config)
    from flows.watch import watch_flow

    files = watch_flow(str(config))
    console.print(f"{len(files)} new file(s) announced" + "".join(f"\n  {f.path}" for f in files))


@app.command()
def history(limit: Annotated[int, typer.Option(help="How many runs to show.")] = 15) -> None:
    """Recent retune flow runs from the Prefect API (PREFECT_API_URL, or the local ephemeral database)."""
    from flows.history import recent_runs

    runs = recent_runs(limit)
    links = any(r.url for r in runs)
    table = Table(title="recent retune runs", title_justify="left")
    for col in ("flow", "run", "state", "started", "duration", "cost", "what happened") + (("link",) if links else ()):
        table.add_column(col, overflow="fold")
    for r in runs:
        table.add_row(r.flow, r.name, r.state, r.started, r.duration, r.cost or "-", r.summary or "-",
                      *((r.url,) if links else ()))
    console.print(table)


@app.command()
def cost(
    config: ConfigOpt = Path("retune.yaml"),
    since: Annotated[str, typer.Option(help="How far back, e.g. 30d, 12h.")] = "30d",
) -> None:
    """What runs cost (estimated from cost.* unit prices), summed by flow, by model version and by stage; read
    from the cost ledger the runs wrote in the workdir (no Prefect server needed)."""
    from retune import cost as costs
    from retune.config import load_config
    from retune.gc import parse_age
    from retune.report import human_bytes

    cfg = load_config(config)
    runs = costs.CostLedger(costs.ledger_path(cfg.path("."))).read(parse_age(since))
    if not runs:
        console.print(f"no runs recorded in the last {since} ({costs.ledger_path(cfg.path('.'))})")
        return
    unit = cfg.cost.currency
    for by, title in (("flow", "by flow"), ("model", "by model version"), ("stage", "by stage")):
        table = Table(title=f"cost {title}, last {since}", title_justify="left")
        for col in (by, "runs" if by != "stage" else "ran", "wall h", "CPU h", "GPU h", "tokens", "stored",
                    f"est. {unit}"):
            table.add_column(col, justify="left" if col == by else "right")
        for row in costs.allocate(runs, by):
            table.add_row(row.name, str(row.runs), f"{row.wall_s / 3600:.4f}", f"{row.cpu_s / 3600:.4f}",
                          f"{row.gpu_s / 3600:.4f}", str(row.tokens), human_bytes(row.store_bytes),
                          f"{row.currency:.4f}")
        console.print(table)
    total = sum(r.totals().currency for r in runs)
    console.print(f"{len(runs)} run(s) since {since}: {total:.4f} {unit} (est.)")


@app.command()
def models(config: ConfigOpt = Path("retune.yaml")) -> None:
    """Model versions in the registry: status, metrics, size, latency, data commit."""
    from retune.config import load_config
    from retune.registry import Registry
    from retune.report import human_bytes
    from retune.store import open_store

    registry = Registry(open_store(load_config(config)))
    statuses = registry.statuses()
    table = Table(title="model versions", title_justify="left")
    for col in ("version", "status", "created", "perplexity", "token acc.", "chrF", "ROUGE-L", "judge", "PII hits",
                "ONNX", "size", "latency p32/p128", "dataset commit", "prompt"):
        table.add_column(col, overflow="fold")
    for v in registry.versions():
        m = v.metrics
        table.add_row(
            v.version,
            statuses[v.version],
            v.created_at[:19],
            f"{m.get('perplexity', float('nan')):.3f}",
            f"{m.get('token_accuracy', float('nan')):.4f}",
            f"{m.get('chrf', float('nan')):.1f}",
            f"{m.get('rouge_l', float('nan')):.1f}",
            f"{m['judge_win_rate']:.0%}" if "judge_win_rate" in m else "-",
            f"{m.get('pii_hits', 0):.0f}",
            v.lineage.get("onnx_variant", "-"),
            human_bytes(m["onnx_size_bytes"]) if "onnx_size_bytes" in m else "-",
            "/".join(f"{m[k]:.0f}" for k in ("latency_p32_ms", "latency_p128_ms") if k in m) + " ms"
            if "latency_p128_ms" in m else "-",
            v.lineage.get("dataset_commit", "")[:12],
            v.lineage.get("system_prompt_sha256", "")[:12] or "-",
        )
    console.print(table)


ReasonOpt = Annotated[str, typer.Option(help="Why: recorded in the registry history with your OS user and the time.")]


@app.command()
def promote(
    version: Annotated[str, typer.Argument(help="Model version to put in production, e.g. v3.")],
    reason: ReasonOpt,
    config: ConfigOpt = Path("retune.yaml"),
) -> None:
    """Put a registered model version in production (recorded with who, when and why)."""
    from retune.config import load_config
    from retune.registry import Registry
    from retune.store import open_store

    registry = Registry(open_store(load_config(config)))
    before = registry.production()
    gate = registry.get(version).decision
    if gate and not gate.get("promote", True):  # a person may overrule the gate; they should know they do
        err.print(f"[yellow]note:[/] {version} failed the promotion gate ({gate.get('reason', '?')}); "
                  "promoting it as asked", soft_wrap=True, markup=True, highlight=False)
    registry.promote(version, reason)
    if before is not None and before.version == version:
        console.print(f"{version} is already in production")
        return
    last = registry.history()[-1]
    console.print(f"production is now {version} (was {before.version if before else 'none'}; by {last['by']} at "
                  f"{last['at']}: {last['reason']})")


@app.command()
def rollback(reason: ReasonOpt, config: ConfigOpt = Path("retune.yaml")) -> None:
    """Move the production pointer back to the previous production version (recorded with who, when and why)."""
    from retune.config import load_config
    from retune.registry import Registry
    from retune.store import open_store

    registry = Registry(open_store(load_config(config)))
    version = registry.rollback(reason=reason)
    last = registry.history()[-1]
    console.print(f"production is now {version.version} (was {last['previous']}; by {last['by']} at {last['at']}: "
                  f"{last['reason']})")


@app.command()
def lineage(
    version: Annotated[str | None, typer.Argument(help="A model version, e.g. v3.")] = None,
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="A dataset commit (id, 6+ character prefix, or ref): "
                                                   "list the model versions trained on it.")
    ] = None,
    config: ConfigOpt = Path("retune.yaml"),
) -> None:
    """Where a model came from: dataset commit → ingest runs (Prefect run links) → source files and sha256."""
    from retune import lineage as core
    from retune.config import load_config
    from retune.store import open_store

    if (version is None) == (dataset is None):
        raise RetuneError("give a model VERSION, or --dataset COMMIT (one of the two)")
    store = open_store(load_config(config))
    if dataset is not None:
        trained = core.models_trained_on(store, dataset)
        for v in trained:
            console.print(f"{v.version}  registered {v.created_at}  config {v.lineage.get('config_hash', '-')}")
        console.print(f"{len(trained)} model version(s) trained on {dataset}")
        return

    found = core.model_lineage(store, version)
    m, d = found.model, found.dataset
    lines = [
        f"model {m.version}{' (production)' if found.production else ''}  registered {m.created_at}  "
        f"base {m.lineage.get('base_model', '-')}  config {m.lineage.get('config_hash', '-')}  "
        f"code {m.lineage.get('code_version', '-')}",
        f"├─ system prompt {m.lineage.get('system_prompt', '-')}  "
        f"sha256 {m.lineage.get('system_prompt_sha256') or '-'}",
        f"└─ dataset commit {d.id}  {d.created_at}  {len(found.ingest_runs)} ingest run(s)",
    ]
    for run in found.ingest_runs:
        lines.append(
            f"   └─ ingest run {run.run_id or '-'}  commit {run.commit[:12]}  {run.created_at}  "
            f"{run.flow_run_url or run.flow_run_id or '(no Prefect run recorded)'}"
        )
        for s in run.sources:
            counts = f"kept {s.kept} of {s.records_in}" if s.kept is not None else "counts not recorded"
            lines.append(f"      └─ {s.path}  sha256 {s.sha256 or 'unknown'}  ({counts})")
    for line in lines:  # whole lines, never cropped: people copy ids, paths and hashes from here
        console.print(line, soft_wrap=True, markup=False, highlight=False)


@app.command()
def gc(
    config: ConfigOpt = Path("retune.yaml"),
    older_than: Annotated[str, typer.Option(help="Age of a run branch's last commit, e.g. 14d, 12h.")] = "14d",
    dry_run: Annotated[bool, typer.Option(help="Only list what would be deleted.")] = False,
) -> None:
    """Delete run branches left behind (failed contracts, killed runs) older than --older-than, and quarantine
    files older than ingest.quarantine_retention_days."""
    from retune import gc as store_gc
    from retune.config import load_config
    from retune.sources import purge_quarantine
    from retune.store import open_store

    cfg = load_config(config)
    stale = store_gc.collect(open_store(cfg), store_gc.parse_age(older_than), dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    for branch in stale:
        console.print(f"{verb} {branch.name} (head {branch.head[:12]}, {branch.age.days} days old)")
    console.print(f"{len(stale)} stale run branch(es) {verb}")
    purged = purge_quarantine(cfg.path("quarantine"), cfg.ingest.quarantine_retention_days, dry_run=dry_run)
    console.print(f"{len(purged)} quarantine file(s) older than {cfg.ingest.quarantine_retention_days:g} days {verb}")


@app.command()
def serve(
    config: ConfigOpt = Path("retune.yaml"),
    host: Annotated[str | None, typer.Option(help="Interface to listen on (default: serve.host, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: serve.port, 8080).")] = None,
) -> None:
    """Answer OpenAI-compatible chat completions (POST /v1/chat/completions) with the production model's ONNX
    variant: response cache, canary (serve.canary_version/canary_share), fallback to the previous version,
    GET /metrics (Prometheus), GET /healthz, POST /feedback (anonymized into watch.landing), hot reload on promote.
    "stream": true answers server-sent events as OpenAI does (chat.completion.chunk pieces, then [DONE]; usage
    with stream_options.include_usage). POST /admin/reload needs "Authorization: Bearer TOKEN" when
    RETUNE_SERVE_ADMIN_TOKEN is set in the environment; without it, it answers clients on this machine only."""
    from retune.config import load_config
    from retune.serve import run_server

    cfg = load_config(config)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")

    def ready(url: str, versions: dict) -> None:
        canary = f", canary {versions['canary']} ({versions['canary_share']:.0%})" if versions["canary"] else ""
        console.print(f"serving production {versions['production']}{canary} at {url}/v1/chat/completions")

    run_server(cfg, host or cfg.serve.host, cfg.serve.port if port is None else port, ready)


@app.command()
def ui(port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 4200) -> None:
    """Start a local Prefect server and UI; then `export PREFECT_API_URL=http://127.0.0.1:PORT/api`."""
    import subprocess

    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    console.print(f"Prefect UI at http://127.0.0.1:{port} — in another shell: "
                  f"export PREFECT_API_URL=http://127.0.0.1:{port}/api")
    subprocess.run([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                    "--port", str(port)], env=env, check=False)


if __name__ == "__main__":
    main()
