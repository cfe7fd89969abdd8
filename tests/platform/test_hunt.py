"""Retro-hunts: exploits that nobody could see when the messages went through (the gate
had only their hashes) are found in the object store later, on a real local Ray
instance and without it, with the same results; a worker killed mid-hunt loses and
duplicates nothing; a stopped hunt resumes with only what was left."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from scan_support import hostile_scan_bytes, zip_of_zeros

from spywall import engine as scan_engine
from spywall.limits import Limits, MiB
from spywall.platform import db, hunt, media, views
from spywall.platform.contract import from_mapping
from spywall.platform.intake import Intake
from spywall.platform.world import _blastpass, _png
from spywall.workers import KILL_GRACE, hard_limit

STORE_OBJECTS = 12     # 3 crafted, 9 benign


def _store(folder: Path) -> tuple[list[str], list[str]]:
    """An object store of attachments named by hash: (crafted hashes, benign hashes)."""
    folder.mkdir()
    crafted, benign = [], []
    for i in range(STORE_OBJECTS):
        data = _blastpass() + bytes([i]) * i if i % 4 == 0 else _png(i)
        digest = hashlib.sha256(data).hexdigest()
        (folder / digest).write_bytes(data)
        (crafted if i % 4 == 0 else benign).append(digest)
    return crafted, benign


def _messages(crafted: list[str], benign: list[str]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = [
        {"id": "reg-v", "type": "account.registered", "ts": "2019-01-01T00:00:00Z",
         "account": "vendor", "phone": "+35799000001", "ip": "198.51.100.1",
         "device": "rig", "client": "WIS/2 Android"}]
    for i, digest in enumerate(crafted):
        out.append({"id": f"m-bad-{i}", "type": "message.sent",
                    "ts": f"2019-05-0{i + 1}T10:00:00Z", "message": f"bad-{i}",
                    "sender": "vendor", "recipients": [f"target-{i}"], "ip": "198.51.100.1",
                    "attachments": [{"sha256": digest, "size": 100}]})
    for i, digest in enumerate(benign):
        out.append({"id": f"m-ok-{i}", "type": "message.sent",
                    "ts": f"2019-05-0{i % 9 + 1}T11:00:00Z", "message": f"ok-{i}",
                    "sender": f"user-{i}", "recipients": [f"friend-{i}"], "ip": "203.0.113.9",
                    "attachments": [{"sha256": digest, "size": 100}]})
    return out


@pytest.fixture
def platform(db_url: str, tmp_path: Path) -> tuple[sa.Engine, Path]:
    crafted, benign = _store(tmp_path / "store")
    engine = db.make_engine(db_url)
    outcomes = Intake(engine).submit([from_mapping(m) for m in _messages(crafted, benign)])
    assert {o.verdict for o in outcomes} == {"allow"}, "the gate had only hashes"
    return engine, tmp_path / "store"


def _campaign(engine: sa.Engine) -> dict[str, object]:
    with engine.connect() as conn:
        (campaign,) = views.campaigns(conn)["campaigns"]
    return campaign


def test_local_pool_finds_what_was_not_known(platform: tuple[sa.Engine, Path]) -> None:
    engine, store = platform
    result = hunt.hunt(engine, str(store), None, hunt.pool_runner(2))
    assert result.objects == STORE_OBJECTS
    assert result.malicious_objects == 3
    assert result.deliveries == 3
    campaign = _campaign(engine)
    assert campaign["actors"] == ["vendor"]
    assert campaign["targets"] == ["target-0", "target-1", "target-2"]
    assert campaign["detectors"] == ["webp-huffman-overflow"]
    again = hunt.hunt(engine, str(store), None, hunt.pool_runner(2))
    assert again.deliveries == 0, "a second hunt adds nothing"


def test_resume_does_only_what_was_left(platform: tuple[sa.Engine, Path],
                                        tmp_path: Path) -> None:
    engine, store = platform
    manifest = tmp_path / "manifest.jsonl"
    first = hunt.hunt(engine, str(store), None, hunt.pool_runner(1), manifest, max_tasks=2,
                      task_files=2)
    assert first.tasks == 2
    rest = hunt.hunt(engine, str(store), None, hunt.pool_runner(1), manifest, task_files=2)
    assert rest.skipped_tasks == 2
    assert rest.tasks == STORE_OBJECTS // 2 - 2
    assert first.objects + rest.objects == STORE_OBJECTS
    assert first.deliveries + rest.deliveries == 3


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {}})
    yield
    ray.shutdown()


@pytest.mark.slow
def test_ray_equals_local_and_survives_a_killed_worker(
        ray_cluster: None, platform: tuple[sa.Engine, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray finds what the local pool finds, a worker killed mid-task (retried by Ray)
    loses and duplicates nothing, and the scan workers of Ray's workers keep the limits
    they are given: a memory bomb among the objects is reported not examined completely,
    the others are examined."""
    engine, store = platform
    (store / "8-zeros.zip").write_bytes(zip_of_zeros())
    marker = tmp_path / "crashed-once"
    monkeypatch.setenv(hunt.CRASH_ONCE, str(marker))   # reaches the workers' runtime_env
    scan = hunt.Scan(Limits(max_memory=256 * MiB))
    result = hunt.hunt(engine, str(store), None, hunt.ray_runner("auto", scan=scan),
                       tmp_path / "manifest.jsonl")
    assert marker.exists(), "a worker died mid-task"
    assert result.objects == STORE_OBJECTS + 1
    assert result.malicious_objects == 3
    assert result.deliveries == 3
    assert result.lost_tasks == 0
    why = {u.path: u.reason for u in result.incomplete}
    bomb = why.pop(str(store / "8-zeros.zip"))
    assert "out of memory while parsing: the memory ceiling of 256 MiB" in bomb
    assert set(why) == _incomplete_here([p for p in store.iterdir()
                                         if p.name != "8-zeros.zip"])
    with engine.connect() as conn:
        malicious = conn.execute(sa.select(sa.func.count()).select_from(db.deliveries)
                                 .where(db.deliveries.c.malicious.is_(True))).scalar()
    assert malicious == 3, "nothing lost, nothing twice"
    assert _campaign(engine)["targets"] == ["target-0", "target-1", "target-2"]


def test_only_the_chosen_detectors_count(platform: tuple[sa.Engine, Path]) -> None:
    engine, store = platform
    result = hunt.hunt(engine, str(store), None, hunt.pool_runner(1),
                       detectors=("gif-zero-area-frame",))
    assert result.objects == STORE_OBJECTS
    assert result.malicious_objects == 0
    assert result.deliveries == 0


def test_indicators_are_reported_not_joined(platform: tuple[sa.Engine, Path],
                                            tmp_path: Path) -> None:
    import json

    engine, store = platform
    benign = sorted(p for p in store.iterdir() if p.read_bytes()[:4] == b"\x89PNG")[0]
    digest = hashlib.sha256(benign.read_bytes()).hexdigest()
    bundle = {"type": "bundle", "id": "bundle--1b7a5c2e-0000-4000-8000-000000000001",
              "objects": [{"type": "indicator", "spec_version": "2.1",
                           "id": "indicator--1b7a5c2e-0000-4000-8000-000000000002",
                           "created": "2026-01-01T00:00:00.000Z",
                           "modified": "2026-01-01T00:00:00.000Z", "name": "test",
                           "pattern": f"[file:hashes.'SHA-256' = '{digest}']",
                           "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z"}]}
    iocs = tmp_path / "iocs.stix2"
    iocs.write_text(json.dumps(bundle))
    result = hunt.hunt(engine, str(store), None, hunt.pool_runner(1), iocs=(str(iocs),))
    assert result.indicator_objects == 1
    assert result.deliveries == 3, "indicator matches join nothing; the exploits do"


def test_stored_events_become_violations_when_the_registry_learns(
        db_url: str, tmp_path: Path) -> None:
    from spywall.platform.registry import Identifier, Order, Party, Registry
    from spywall.platform.registry_store import import_registry

    engine = db.make_engine(db_url)
    events = [{"id": f"c{i}", "type": "account.connected", "ts": f"2026-0{i + 1}-01T00:00:00Z",
               "account": "returning", "ip": "198.51.100.7", "device": "rig-x",
               "client": "WA/2.26 Android"} for i in range(3)]
    events.append({"id": "old", "type": "account.connected", "ts": "2025-01-01T00:00:00Z",
                   "account": "returning", "ip": "198.51.100.7", "device": "rig-x",
                   "client": "WA/2.26 Android"})
    outcomes = Intake(engine).submit([from_mapping(e) for e in events])
    assert {o.verdict for o in outcomes} == {"allow"}
    registry = Registry(parties=[Party(
        id="vendor", name="Vendor", orders=[Order(court="c", case="1", date="2025-10-17")],
        identifiers=[Identifier(kind="device", value="rig-x", source="new intelligence")])])
    with engine.begin() as conn:
        import_registry(conn, registry, "analyst", "device learned later")
    (tmp_path / "empty").mkdir()
    result = hunt.hunt(engine, str(tmp_path / "empty"), None, hunt.pool_runner(1))
    assert result.history_violations == 3, "the event before the order is none"
    with engine.connect() as conn:
        found = views.violations(conn)["violations"]
    assert sorted(v["event"] for v in found) == ["c0", "c1", "c2"]
    assert all(v["identifiers"][0]["value"] == "rig-x" for v in found)
    again = hunt.hunt(engine, str(tmp_path / "empty"), None, hunt.pool_runner(1))
    assert again.history_violations == 0



def test_saved_device_results_are_matched_with_todays_indicators(
        db_url: str, tmp_path: Path) -> None:
    """A lab's saved check-ios result folder, from a check made with no indicators,
    re-examined later with the Pegasus set: the planted indicators are found again, the
    same values check-ios itself matches with that set (an independent pass over the
    records, by field names, against the module's own checks)."""
    import io as _io
    import json
    from contextlib import redirect_stdout

    from spywall.cli import main
    from spywall.iocs import bundled_dir
    from spywall.samples.ios import BackupSpec, write_backup

    backup = write_backup(tmp_path / "backup", BackupSpec())
    store = tmp_path / "lab-results"
    empty = tmp_path / "no-iocs"
    empty.mkdir()
    (empty / "none.stix2").write_text(json.dumps(
        {"type": "bundle", "id": "bundle--1b7a5c2e-0000-4000-8000-000000000009",
         "objects": []}))
    with redirect_stdout(_io.StringIO()):
        main(["check-ios", str(backup), "-q", "-f", "json", "--iocs", str(empty),
              "--output", str(store)])
        main(["check-ios", str(backup), "-q", "-f", "json", "--output",
              str(tmp_path / "with-iocs")])
    pegasus = sorted(Path(bundled_dir()).glob("amnesty_pegasus*"))
    assert pegasus
    engine = db.make_engine(db_url)
    result = hunt.hunt(engine, str(store), None, hunt.pool_runner(1),
                       iocs=tuple(str(p) for p in pegasus))
    assert result.indicator_objects >= 1
    alerts = json.loads((tmp_path / "with-iocs" / "alerts.json").read_text())
    expected = {a["matched_indicator"]["value"] for a in alerts
                if a.get("matched_indicator") and "pegasus" in
                a["matched_indicator"]["stix2_file_name"].lower()}
    saved = " ".join(p.read_text() for p in store.glob("*.json") if p.name != "report.json")
    expected = {v for v in expected if v in saved}   # what the saved records hold at all
    assert expected, "the planted backup carries Pegasus indicators"
    found = hunt.examine_task(hunt.make_tasks(hunt.list_objects(str(store), None),
                                              iocs=tuple(str(p) for p in pegasus))[0])
    matched = {m.split(" ")[1] for f in found for m in f.indicators}
    assert expected <= matched | {v.rstrip("/") for v in matched}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
        st.sampled_from(["url", "links", "client", "user", "path", "x", "sha256"]), inner,
        max_size=5), max_leaves=40)


@functools.cache
def _bundled_index(cls: type) -> object:
    return cls.load()


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_result_files_of_any_shape_never_crash(value: object) -> None:
    import json

    from spywall.iocs import IocIndex
    from spywall.platform.hunt_reports import rematch

    index = _bundled_index(IocIndex)
    matched, why = rematch(json.dumps(value).encode(), "x.json", index)
    assert isinstance(matched, list)
    assert isinstance(why, str)
    deep = b"[" * 100_000 + b"]" * 100_000
    assert rematch(deep, "deep.json", index) == ([], "")


def test_a_store_behind_an_fsspec_url(platform: tuple[sa.Engine, Path]) -> None:
    engine, store = platform
    result = hunt.hunt(engine, store.resolve().as_uri(), None, hunt.pool_runner(2))
    assert result.objects == STORE_OBJECTS
    assert result.malicious_objects == 3
    assert result.deliveries == 3


# Each object is examined in a supervised scan worker of its task's process: a stored
# object that hangs, crashes or exhausts its worker costs only itself.

HOSTILE = Limits(seconds=3)      # a stuck worker is killed after 9 s
STOPPED_AFTER = hard_limit(HOSTILE) + KILL_GRACE


def _incomplete_here(paths: list[Path]) -> set[str]:
    """The objects the scan engine, called in this process, does not examine completely
    (the oracle for every object a scan worker finishes with): the crafted WebPs, whose
    malformed prefix code is itself an error entry."""
    out = set()
    for path in paths:
        data = path.read_bytes()
        if not media.scan_attachment(data, str(path), hashlib.sha256(data).hexdigest()).complete:
            out.add(str(path))
    return out


def _manifest_tasks(path: Path) -> set[str]:
    return {json.loads(line)["task"] for line in path.read_text().splitlines()}


def _delivered(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(db.deliveries)
                                .where(db.deliveries.c.malicious.is_(True))).scalar_one())


def test_an_object_that_hangs_or_crashes_its_scan_worker_costs_only_itself(
        platform: tuple[sa.Engine, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        forked: None, never_returns: Callable[..., None]) -> None:
    """One task holding every object: the stuck one is killed at its deadline, the crashed
    one's worker is replaced, each is named with its reason; the task goes on, its
    exploits are found, it is done (in the manifest), and the command would exit 1."""
    engine, store = platform
    monkeypatch.setattr(scan_engine, "scan_bytes",
                        hostile_scan_bytes(scan_engine.scan_bytes, never_returns))
    stuck, crash = store / "8-stuck.bin", store / "9-crash.bin"
    stuck.write_bytes(b"STUCK in a C library")
    crash.write_bytes(b"CRASH in a C library")
    assert any(p.name > crash.name for p in store.iterdir()), "objects follow them"
    others = _incomplete_here([p for p in store.iterdir() if p not in (stuck, crash)])
    assert len(others) == 3
    manifest = tmp_path / "manifest.jsonl"
    result = hunt.hunt(engine, str(store), None,
                       hunt.pool_runner(1, hunt.Scan(HOSTILE, "fork")), manifest)
    assert (result.tasks, result.lost_tasks) == (1, 0)
    assert result.objects == STORE_OBJECTS + 2
    assert result.malicious_objects == 3
    assert result.deliveries == 3
    assert _delivered(engine) == 3
    assert result.incomplete_objects == 2 + len(others)
    why = {u.path: u.reason for u in result.incomplete}
    assert why.pop(str(stuck)) == ("limit: hard time limit: its scan worker was stopped "
                                   f"after {STOPPED_AFTER:g}s")
    assert why.pop(str(crash)) == ("limit: its scan worker died (SIGABRT): the input was "
                                   "not examined completely")
    assert set(why) == others
    digests = {u.path: u.sha256 for u in result.incomplete}
    for lost in (stuck, crash):     # hashed by the task, which parses nothing of them
        assert digests[str(lost)] == hashlib.sha256(lost.read_bytes()).hexdigest()
    assert len(_manifest_tasks(manifest)) == 1


def _dies_on_poison(task: hunt.Task, scan: hunt.Scan = hunt.DEFAULT_SCAN) -> list[hunt.Found]:
    """``examine_task`` whose process is killed (as by the OOM killer) when its task holds
    the object named ``poison``."""
    if any(i.path.endswith("poison") for i in task.items):
        os.kill(os.getpid(), signal.SIGKILL)
    return _EXAMINE(task, scan)


_EXAMINE = hunt.examine_task


def test_a_task_whose_process_dies_is_reported_and_the_others_are_done(
        platform: tuple[sa.Engine, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        forked: None) -> None:
    """The local pool breaks whenever the poisoned task runs: the tasks it broke with it
    are run again, the poisoned one gives up after its retries, its objects are reported
    not examined and left out of the manifest, and a resumed hunt tries it again."""
    engine, store = platform
    (store / "8-poison").write_bytes(_png(99))
    tasks = hunt.make_tasks(hunt.list_objects(str(store), None), files=3)
    [poisoned] = [t for t in tasks if any(i.path.endswith("poison") for i in t.items)]
    assert len(poisoned.items) == 3
    assert len(tasks) == 5
    crafted = {p.name for p in store.iterdir() if p.read_bytes()[:4] == b"RIFF"}
    lost_crafted = sum(Path(i.path).name in crafted for i in poisoned.items)
    lost = {i.path for i in poisoned.items}
    others = _incomplete_here([p for p in store.iterdir() if str(p) not in lost])
    monkeypatch.setattr(hunt, "examine_task", _dies_on_poison)
    manifest = tmp_path / "manifest.jsonl"
    scan = hunt.Scan(method="fork")
    result = hunt.hunt(engine, str(store), None, hunt.pool_runner(2, scan, retries=1),
                       manifest, task_files=3)
    assert (result.tasks, result.lost_tasks) == (4, 1)
    assert result.objects == STORE_OBJECTS + 1
    assert result.incomplete_objects == 3 + len(others)
    why = {u.path: u.reason for u in result.incomplete}
    assert {p: why.pop(p) for p in lost} == dict.fromkeys(
        lost, "its worker process died 2 times: not examined")
    assert set(why) == others
    assert result.malicious_objects == result.deliveries == 3 - lost_crafted
    assert _manifest_tasks(manifest) == {t.id for t in tasks} - {poisoned.id}
    monkeypatch.setattr(hunt, "examine_task", _EXAMINE)
    rest = hunt.hunt(engine, str(store), None, hunt.pool_runner(2, scan), manifest,
                     task_files=3)
    assert (rest.skipped_tasks, rest.tasks, rest.lost_tasks) == (4, 1, 0)
    assert {u.path for u in rest.incomplete} == _incomplete_here([Path(p) for p in lost])
    assert rest.deliveries == lost_crafted
    assert _delivered(engine) == 3


def test_a_process_that_dies_once_costs_nothing_in_the_pool(
        platform: tuple[sa.Engine, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The first task kills its process, and with it the pool and the tasks it ran: each
    is run again alone, and nothing is lost or counted twice."""
    engine, store = platform
    marker = tmp_path / "crashed-once"
    monkeypatch.setenv(hunt.CRASH_ONCE, str(marker))
    manifest = tmp_path / "manifest.jsonl"
    result = hunt.hunt(engine, str(store), None, hunt.pool_runner(2), manifest,
                       task_files=2)
    assert marker.exists(), "a worker died mid-task"
    assert (result.tasks, result.lost_tasks) == (STORE_OBJECTS // 2, 0)
    assert result.objects == STORE_OBJECTS
    assert {u.path for u in result.incomplete} == _incomplete_here(list(store.iterdir()))
    assert result.deliveries == 3
    assert _delivered(engine) == 3
    assert len(_manifest_tasks(manifest)) == STORE_OBJECTS // 2


def test_the_hunt_command_reports_an_object_past_the_memory_ceiling(
        db_url: str, tmp_path: Path) -> None:
    """``spywall hunt --payload-max-memory``: a real bomb in a store of benign photos is
    counted and named as not examined completely, and the command exits 1 although
    nothing malicious was found (fail closed)."""
    from api_support import SRC

    store = tmp_path / "store"
    store.mkdir()
    (store / "a.png").write_bytes(_png(1))
    (store / "b.zip").write_bytes(zip_of_zeros())
    (store / "c.png").write_bytes(_png(2))
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    run = subprocess.run([sys.executable, "-m", "spywall", "hunt", "--store", str(store),
                          "--db", db_url, "--payload-max-memory", "256", "-j", "1",
                          "-f", "json"],
                         capture_output=True, env=env, timeout=600, check=False)
    assert run.returncode == 1, run.stderr.decode()[-2000:]
    out = json.loads(run.stdout)
    assert (out["objects"], out["malicious_objects"], out["incomplete_objects"]) == (3, 0, 1)
    [why] = out["incomplete"]
    assert why["path"] == str(store / "b.zip")
    assert "out of memory while parsing: the memory ceiling of 256 MiB" in why["reason"]


def test_content_digest_of_a_lost_object(tmp_path: Path) -> None:
    """The hash named for an object whose worker was lost: read a chunk at a time, equal
    to hashlib's over the whole file (here three chunks and a part); "" for what cannot
    be hashed: a missing file, a FIFO (refused before it blocks), a file over the cap."""
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * (3 * hunt.HASH_CHUNK // 256 + 7))
    assert hunt.content_digest(str(big)) == hashlib.sha256(big.read_bytes()).hexdigest()
    assert hunt.content_digest(f"file://{big}") == hashlib.sha256(
        big.read_bytes()).hexdigest()
    assert hunt.content_digest(str(big), cap=hunt.HASH_CHUNK) == ""
    assert hunt.content_digest(str(tmp_path / "gone")) == ""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert hunt.content_digest(str(fifo)) == ""
