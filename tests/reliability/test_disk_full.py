"""Disk full, for real, while ingest writes Parquet parts, while the local store writes objects, and while training
writes a checkpoint: one clear line (`disk full: no space left on device writing PATH`), the previous good state
intact (main unchanged; the last complete checkpoint resumes), and after space is freed the rerun completes.

Two ways to fill the disk, each test runs with both when it can: a small tmpfs mounted for the test (needs root or
CAP_SYS_ADMIN), and RLIMIT_FSIZE on the writing process (works anywhere: writes past the limit fail with EFBIG).
The tmpfs variants skip, saying why, where mounting is not allowed; the rlimit variants always run (the ingest test
and the checkpoint test run once each, on a tmpfs where it can, else with the rlimit: both ways were seen passing)."""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from faults import REPO, assert_main_holds_exactly, clean_ingest, retune_env

from retune.config import TrainingConfig, load_config
from retune.datasets import read_turns
from retune.errors import TrainingError
from retune.store import LocalStore, open_store
from retune.training.dataset import build_training_set
from retune.training.launch import complete_checkpoints, finetune

sys.path.insert(0, str(REPO / "tests" / "flows"))
from dag_config import BIN, tiny_config, write_config  # noqa: E402

MODES = ["tmpfs", "rlimit"]
RLIMIT_BYTES = 8 << 10  # far below one Parquet part or checkpoint shard
ZERO2 = REPO / "infra" / "deepspeed" / "zero2.json"


@contextlib.contextmanager
def small_disk(path: Path, size: str):
    """A tmpfs of `size` mounted at path for the block; skips the test where mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                                 capture_output=True, text=True)  # fmt: skip
    except FileNotFoundError:
        pytest.skip("no mount command here; the rlimit variant covers it")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()[:120]}); the rlimit variant covers it")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path: Path, leave: int = 0) -> Path:
    """Take every free byte of path's filesystem but `leave`; return the filler file (delete it to free space)."""
    filler = path / "filler.bin"
    free = os.statvfs(path).f_bavail * os.statvfs(path).f_frsize - leave
    with open(filler, "wb") as f:
        with contextlib.suppress(OSError):  # tmpfs counts pages: the last few KiB may not fit
            while free > 0:
                f.write(b"\0" * min(free, 1 << 20))
                free -= 1 << 20
    return filler


def limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (RLIMIT_BYTES, RLIMIT_BYTES))


def run_retune(args: list[str], env: dict[str, str], limited: bool) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "retune"), *args], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=300, preexec_fn=limit_file_size if limited else None)  # fmt: skip


def can_mount(tmp: Path) -> bool:
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(tmp)], capture_output=True).returncode:
            return False
    except FileNotFoundError:  # no mount command at all
        return False
    subprocess.run(["umount", str(tmp)], check=False)
    return True


@pytest.mark.slow
def test_ingest_on_a_full_disk_fails_in_one_line_and_main_is_untouched(tmp_path, prefect_api):
    # Three whole ingest runs: one way to fill the disk is enough here (a tmpfs where it can be mounted)
    mode = "tmpfs" if can_mount(tmp_path / "probe") else "rlimit"
    work = tmp_path / "work"
    disk = small_disk(work, "16m") if mode == "tmpfs" else contextlib.nullcontext(work)
    with disk:
        config = write_config(tmp_path / "retune.yaml", tiny_config(work))
        env = retune_env(tmp_path, PREFECT_API_URL=prefect_api)
        first = run_retune(["ingest", "--config", str(config), "--source", str(REPO / "examples/batch1/*")], env,
                           limited=False)  # fmt: skip
        assert first.returncode == 0, first.stderr[-2000:]
        store = open_store(load_config(config))
        main_before, turns_before = store.resolve("main"), read_turns(store, "main").num_rows

        filler = fill(work, leave=16 << 10) if mode == "tmpfs" else None
        args = ["ingest", "--config", str(config), "--source", str(REPO / "examples/batch2/*")]
        failed = run_retune(args, env, limited=mode == "rlimit")
        assert failed.returncode == 1
        last = failed.stderr.strip().splitlines()[-1]
        assert last.startswith("error: disk full: no space left on device writing "), last
        assert str(work) in last and "Traceback" not in last
        assert store.resolve("main") == main_before and read_turns(LocalStore(work / "store"), "main").num_rows == (
            turns_before
        )
        assert [b for b in store.branches() if b != "main"] == []  # it failed before anything reached the store

        if filler is not None:
            filler.unlink()
        rerun = run_retune(args, env, limited=False)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        assert_main_holds_exactly(LocalStore(work / "store"),
                                  clean_ingest(str(REPO / "examples/batch[12]/*"), tmp_path / "clean"))  # fmt: skip


_STORE_WRITES = """
import sys
from pathlib import Path
from retune.errors import DiskFullError
from retune.store import LocalStore
store = LocalStore(Path(sys.argv[1]))
store.create_branch("run")
try:
    store.put_bytes("run", "data/big.bin", b"x" * (4 << 20))
except DiskFullError as exc:
    print(exc)
"""


@pytest.mark.parametrize("mode", MODES)
def test_the_local_store_on_a_full_disk_refuses_cleanly_and_stays_readable(mode, tmp_path):
    root = tmp_path / "disk" / "store"
    disk = small_disk(root.parent, "2m") if mode == "tmpfs" else contextlib.nullcontext(root.parent)
    with disk:
        store = LocalStore(root)
        store.put_bytes("main", "data/small.txt", b"committed before the disk filled up")
        good = store.commit("main", "good state")
        filler = fill(root.parent, leave=64 << 10) if mode == "tmpfs" else None
        writes = subprocess.run([sys.executable, "-c", _STORE_WRITES, str(root)], cwd=REPO, capture_output=True,
                                text=True, preexec_fn=limit_file_size if mode == "rlimit" else None)  # fmt: skip
        assert writes.returncode == 0, writes.stderr[-2000:]
        assert writes.stdout.startswith(f"disk full: no space left on device writing the store at {root}")
        assert list((root / "tmp").iterdir()) == []  # no half-written object left behind
        assert store.resolve("main") == good.id and store.list_objects("run") == ["data/small.txt"]
        assert store.get_bytes("main", "data/small.txt") == b"committed before the disk filled up"
        if filler is not None:
            filler.unlink()
        store.put_bytes("run", "data/big.bin", b"x" * (4 << 10))  # space again: the same store works
        store.commit("run", "after the disk was freed")
        assert store.merge("run", "main").id != good.id


@pytest.mark.slow
def test_a_checkpoint_on_a_full_disk_fails_clearly_and_the_last_complete_one_resumes(
    tmp_path, tiny_base_model, tiny_turns, deepspeed_ops_cache
):
    mode = "tmpfs" if can_mount(tmp_path / "probe") else "rlimit"  # both seen passing; one is enough per run
    examples = tmp_path / "examples.parquet"
    pq.write_table(build_training_set(tiny_turns, test_fraction=0.2), examples)
    run = TrainingConfig(nproc_per_node=1, max_steps=8, checkpoint_every=4, learning_rate=1e-2,
                         per_device_batch_size=4, max_length=128)  # fmt: skip
    out = tmp_path / "disk" / "run"
    disk = small_disk(out.parent, "64m") if mode == "tmpfs" else contextlib.nullcontext(out.parent)
    with disk:
        seen: dict = {}

        def full_after_first_checkpoint(event: dict) -> None:
            seen.setdefault(event["event"], event)
            if event["event"] == "checkpoint" and event["step"] == 4:
                if mode == "tmpfs":
                    seen["filler"] = fill(out.parent)
                else:  # the ranks may not write past RLIMIT_BYTES from now on
                    for pid in seen["start"]["pids"]:
                        resource.prlimit(pid, resource.RLIMIT_FSIZE, (RLIMIT_BYTES, RLIMIT_BYTES))

        with pytest.raises(TrainingError) as failed:
            finetune(str(tiny_base_model), examples, out, run, deepspeed_config=ZERO2,
                     on_event=full_after_first_checkpoint, cache_dir=deepspeed_ops_cache)  # fmt: skip
        message = str(failed.value)
        assert message.startswith("training failed: disk full: no space left on device writing checkpoint step-8 in ")
        assert "\n" not in message and str(out) in message
        (config_dir,) = (out / "checkpoints").iterdir()
        assert complete_checkpoints(config_dir) == [4]  # step-8 is partial, never marked complete

        if "filler" in seen:
            seen["filler"].unlink()
        resumed = finetune(str(tiny_base_model), examples, out, run, deepspeed_config=ZERO2,
                           cache_dir=deepspeed_ops_cache)  # fmt: skip
        assert resumed.resumed_from_step == 4 and resumed.steps == 8
        assert [m["step"] for m in resumed.metrics] == list(range(5, 9))
