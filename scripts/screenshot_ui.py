"""Screenshots of the Prefect UI showing a real retune run and its artifacts, for the README.

Starts its own Prefect server on a free 127.0.0.1 port (own database in a temp dir), runs `retune run` on the
first sample batch against it, then opens the run's pages in headless Chromium (Debian package `chromium`)
and writes PNGs to docs/. Everything it starts, it stops.

    .venv/bin/python scripts/screenshot_ui.py
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DOCS = REPO / "docs"


def main() -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        sys.exit("needs headless Chromium: apt-get install chromium")
    tmp = Path(tempfile.mkdtemp(prefix="retune-ui-"))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false", HF_HUB_OFFLINE="1",
               DO_NOT_TRACK="1")
    # The UI asks the API at the address it was told (by default port 4200), not the one it was served from.
    server_env = {**env, "PREFECT_UI_API_URL": f"{url}/api"}
    server = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                              env=server_env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        _wait_healthy(f"{url}/api")
        config = tmp / "retune.yaml"
        config.write_text((REPO / "retune.yaml").read_text().replace("workdir: .retune", f"workdir: {tmp / 'work'}"))
        done = subprocess.run(
            [str(BIN / "retune"), "run", "--config", str(config), "--source", "examples/batch1/*"],
            env={**env, "PREFECT_API_URL": f"{url}/api"}, cwd=REPO, capture_output=True, text=True,
        )
        if done.returncode != 0:
            sys.exit("retune run failed:\n" + done.stderr[-3000:])
        runs = httpx.post(f"{url}/api/flow_runs/filter", json={"limit": 50}).json()
        flows = {f["id"]: f["name"] for f in httpx.post(f"{url}/api/flows/filter", json={}).json()}
        run_id = next(r["id"] for r in runs if flows[r["flow_id"]] == "retune-run")
        retrain_id = next(r["id"] for r in runs if flows[r["flow_id"]] == "retrain")
        artifacts = {a["key"]: a["id"] for a in httpx.post(f"{url}/api/artifacts/filter", json={}).json()}
        DOCS.mkdir(exist_ok=True)
        shots = {
            "prefect-ui-run.png": f"{url}/runs/flow-run/{run_id}",
            "prefect-ui-retrain.png": f"{url}/runs/flow-run/{retrain_id}",
            "prefect-ui-evaluation.png": f"{url}/artifacts/artifact/{artifacts['evaluation']}",
            "prefect-ui-export.png": f"{url}/artifacts/artifact/{artifacts['export']}",
        }
        for name, page in shots.items():
            subprocess.run(
                [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp / 'chromium'}", "--window-size=1600,1000", "--virtual-time-budget=20000",
                 f"--screenshot={DOCS / name}", page],
                check=True, capture_output=True, timeout=120,
            )
            print(f"wrote docs/{name} ({page})")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        shutil.rmtree(tmp, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(api: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    sys.exit("the Prefect server did not start")


if __name__ == "__main__":
    main()
