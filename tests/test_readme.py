"""Every block of the README runs as written, with only ports and paths adapted, and prints what
the README says it prints, so the README cannot drift from the code.

Blocks run in README order on one throwaway warehouse and instance home: `make demo` first, and
everything after it reads what the demo built. Two blocks do not run, each marked in the README
or named here with the reason: `make test` (this is it) and the real-vendor example (needs an
account and the network). Long-running commands (`make dev`, the emulator) are started, checked
while they serve, and stopped with their whole process group.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from pipelines.universe import load_universe
from pipelines.warehouse.lake import Warehouse, extension_path
from tests.conftest import database
from tests.objectstore import object_store

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
README = REPO / "README.md"
BLOCK = re.compile(
    r"^(?P<indent> *)(?:<!-- readme-test: skip \((?P<skip>[^)]*)\) -->\n(?P=indent))?```(?P<lang>\w*)\n(?P<body>.*?)^(?P=indent)```",
    re.M | re.S,
)
NOT_RUN = {"make test": "this test is part of it"}


@dataclass(frozen=True)
class Block:
    lang: str
    body: str
    skip: str | None


def readme_blocks() -> list[Block]:
    text = README.read_text()
    blocks = []
    for m in BLOCK.finditer(text):
        body = textwrap.dedent("\n".join(line for line in m.group("body").splitlines()))
        blocks.append(Block(m.group("lang"), body, m.group("skip")))
    return blocks


def _without_comment(line: str) -> str | None:
    """``line`` with a trailing ``# comment`` cut off, or None while a quote is still open."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return None if quote else line.rstrip()


def commands(body: str) -> list[str]:
    """The shell commands of a block: backslash continuations and lines inside an open quote
    joined, trailing comments dropped."""
    out: list[str] = []
    pending = ""
    for line in re.sub(r"\\\n\s*", " ", body).splitlines():
        line = pending + "\n" + line if pending else line
        command = _without_comment(line)
        if command is None:  # a quote still open: the command goes on
            pending = line
            continue
        pending = ""
        if command.strip():
            out.append(command.strip())
    assert not pending, f"unbalanced quote in a README block: {pending!r}"
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sandbox:
    root: Path
    warehouse: Path
    serving: Path
    home: Path
    env: dict[str, str]

    def adapt(self, text: str) -> str:
        """Paths and ports only."""
        text = text.replace(".venv/bin/", f"{BIN}/")
        text = re.sub(
            r"(/abs/path/to/)?warehouse/(serving\.duckdb|markhouse\.sqlite)",
            lambda m: str(self.serving if m.group(2).startswith("serving") else self.warehouse),
            text,
        )
        text = text.replace("$PWD/.dagster_home", str(self.home))
        text = re.sub(r"--port \d+", lambda _: f"--port {free_port()}", text)
        text = re.sub(r"--output /tmp/(\S+)", lambda m: f"--output {self.root / m.group(1)}", text)
        return re.sub(r"^make dev$", lambda _: f"make dev DEV_PORT={free_port()}", text)


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    box = Sandbox(
        tmp_path, tmp_path / "wh" / "markhouse.sqlite", tmp_path / "wh" / "serving.duckdb", home, {}
    )
    box.env = {
        **{k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")},
        "MARKHOUSE_WAREHOUSE": str(box.warehouse),
        "MARKHOUSE_SERVING": str(box.serving),
        "DAGSTER_HOME": str(home),
        "PYTHONWARNINGS": "ignore",
        "COLUMNS": "200",
    }
    return box


def run(box: Sandbox, command: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command], cwd=REPO, env=box.env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def background() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:  # nothing left behind, even if a check failed
        stop(proc)


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def wait_for(url: str, seconds: float = 180) -> bytes:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return bytes(resp.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def check_sample_output(box: Sandbox, sample: str, demo_stdout: str) -> None:
    """Every line the README shows (bar the `...` elisions) is printed, in that order."""
    printed = [line.rstrip() for line in demo_stdout.splitlines()]
    position = 0
    for line in box.adapt(sample).splitlines():
        if line.strip() in ("", "..."):
            continue
        assert line.rstrip() in printed[position:], f"README sample line not printed (in order): {line!r}"
        position = printed.index(line.rstrip(), position) + 1


def run_command(box: Sandbox, readme_command: str, background: list[subprocess.Popen[str]]) -> str:
    """Run one README command and check what it prints; returns its stdout."""
    command = box.adapt(readme_command)
    if " emulator " in command:
        proc = subprocess.Popen(
            shlex.split(command), cwd=REPO, env=box.env, text=True, start_new_session=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        background.append(proc)
        assert proc.stdout is not None
        assert "markhouse vendor emulator on http://127.0.0.1:" in proc.stdout.readline()
        stop(proc)
        return ""
    if command.startswith("make dev"):
        port = command.rsplit("=", 1)[1]
        proc = subprocess.Popen(
            ["bash", "-c", command], cwd=REPO, env=box.env, text=True, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        background.append(proc)
        wait_for(f"http://127.0.0.1:{port}/server_info")
        query = json.dumps({"query": "{ runsOrError { ... on Runs { results { tags { key value } } } } }"})
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/graphql", query.encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as resp:
            runs = json.loads(resp.read())["data"]["runsOrError"]["results"]
        # the UI shows the runs the markhouse command started: one instance home
        assert any({"key": "markhouse/command", "value": "backfill"} in r["tags"] for r in runs), runs
        stop(proc)
        return ""
    out = run(box, command)
    printed = out.stdout + out.stderr
    if "markhouse status --max-age-hours 6" in command:  # judged at 06:00 with a 6 h bound: stale
        assert out.returncode == 1, printed
        assert "coverage as of 2026-05-17 06:00 UTC" in out.stdout and ": stale, last interval" in out.stdout
        return out.stdout
    assert out.returncode == 0, f"{readme_command}\n{printed[-3000:]}"
    if command.startswith("make demo") or " backfill " in command:
        assert out.stdout.rstrip().splitlines()[-1].startswith("done: the marts"), out.stdout[-2000:]
        assert "FAILED" not in out.stdout
        assert re.search(r"\w+: \d+/\d+ (files|instrument-months|coin-months|model-windows)", out.stderr)
    elif command.endswith("markhouse summary"):
        assert f"serving copy (open this one from BI tools and notebooks): {box.serving}" in out.stdout
    elif command.endswith("status --json"):
        report = json.loads(out.stdout)
        assert report["ok"] is True and report["as_of"] == "2026-05-17T08:00:00+00:00"
        assert {m["vendor"] for m in report["months"]} == {"aperiodic", "kaiko", "cayolargo"}
    elif command.endswith("markhouse status"):
        assert out.stdout.splitlines()[:2] == [  # the demo's warehouse says so first
            "this warehouse is the demo: every row came from the embedded emulator (real data replayed, no vendor)",
            "coverage as of 2026-05-17 08:00 UTC",
        ]
        assert "status: OK" in out.stdout
    elif " report" in command:
        assert out.stdout.startswith("report (20") and ".html" in out.stdout and "charts: " in out.stdout
    elif command.endswith("--version"):
        assert re.fullmatch(r"markhouse \d+\.\d+\.\d+\n", out.stdout)
    elif "dg list defs" in command:
        for name in ("refresh", "daily_current_month", "marts/rpt_coverage", "raw/kaiko_derivative_price"):
            assert name in out.stdout
    elif "duckdb -readonly" in command:
        assert "mark_return_pct" in out.stdout and "Error" not in printed
        assert len(re.findall(r"^│ 2026-0\d-\d\d", out.stdout, re.M)) == 5  # five days, no duplicates
    elif "schedule start" in command:
        assert "daily_current_month" in printed
    elif "dg launch" in command:
        assert "RUN_SUCCESS" in printed
    return out.stdout


# what each Python snippet must have produced, checked in the snippet's own process
PYTHON_CHECKS = """
if "rows" in globals():
    assert {r[0] for r in rows} == {"aperiodic", "kaiko", "cayolargo"}, rows
    assert carry.height > 0 and set(carry["kind"].unique()) == {"perpetual"}
if "columns" in globals():
    assert [c["name"] for c in columns][:3] == ["vendor", "venue", "instrument_key"], columns
    assert all(c["comment"] for c in columns), columns  # the definitions reach BI tools
print("checked")
"""


def run_python(box: Sandbox, body: str) -> None:
    """A snippet runs in a fresh interpreter of the venv, as a notebook would."""
    out = subprocess.run(
        [sys.executable, "-c", box.adapt(body) + "\n" + PYTHON_CHECKS],
        cwd=box.root,
        env=box.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0 and out.stdout.endswith("checked\n"), body + out.stderr[-3000:]


def test_every_readme_block_runs_as_written(
    sandbox: Sandbox, background: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    blocks = readme_blocks()
    assert len(blocks) >= 10
    sample: str | None = None
    demo_stdout: str | None = None
    skipped: list[str] = []
    for block in blocks:
        if block.skip:
            skipped.append(block.skip)
            continue
        if block.lang == "sh":
            for command in commands(block.body):
                if command in NOT_RUN:
                    skipped.append(NOT_RUN[command])
                    continue
                stdout = run_command(sandbox, command, background)
                if command == "make demo":
                    demo_stdout = stdout
        elif block.lang == "":
            sample = block.body
        elif block.lang == "python":
            run_python(sandbox, block.body)
        elif block.lang == "sql":
            con = duckdb.connect(str(sandbox.serving), read_only=True)
            try:
                rows = con.execute(block.body).fetchall()
            finally:
                con.close()
            assert [r[0] for r in rows] == list(range(len(rows))) and len(rows) >= 3  # tenor 0, 1, 2, ...
        elif block.lang == "yaml":
            universe = tmp_path / "universe.yaml"
            text = block.body if "start_month" in block.body else f"start_month: 2026-01\n{block.body}"
            universe.write_text(text)
            assert load_universe(universe).sections  # every vendor section, Aperiodic too
        else:
            pytest.fail(f"README block of unknown kind {block.lang!r}")
    assert demo_stdout is not None and sample is not None
    check_sample_output(sandbox, sample, demo_stdout)
    assert sorted(skipped) == sorted(
        [
            "needs a real Aperiodic account and the network",
            "this test is part of it",
            # the lake's commands and its Python reader: tests/test_lake.py runs both
            "tests/test_lake.py runs each of these on a throwaway warehouse; the import needs an old-layout file",
            "tests/test_lake.py reads the published snapshot and earlier ones this way",
            SEVERAL_MACHINES,  # the commands and the BI read's SQL
            SEVERAL_MACHINES,
            "tests/test_parallel_runs.py runs these with deploy/parallel/dagster.yaml against pgserver",
            # verify, repair, backup and restore need damaged files and a concurrent writer
            "tests/test_trust.py runs each on a throwaway warehouse, with damaged files and a concurrent writer",
        ]
    )


SEVERAL_MACHINES = (
    "tests/test_readme.py runs the several-machines blocks in a sandbox against pgserver and moto"
)


def test_the_several_machines_blocks_run_in_a_sandbox_and_leave_the_users_files_alone(
    postgres: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's several-machines blocks, run as written in a copy of the checkout that holds a
    user's own warehouse, serving file, report and instance home: only the addresses and keys are
    those of a pgserver PostgreSQL and a moto S3 server; afterwards every file of the copy is as
    it was, and nothing new is in it."""

    sh, sql = (b for b in readme_blocks() if b.skip == SEVERAL_MACHINES)
    assert (sh.lang, sql.lang) == ("sh", "sql")
    checkout = tmp_path / "checkout"
    for name in subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.splitlines():
        if (REPO / name).is_file():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            (checkout / name).write_bytes((REPO / name).read_bytes())
    (checkout / ".venv").symlink_to(BIN.parent)
    users = {  # what a user of this checkout has: none of it may change
        "warehouse/markhouse.sqlite": b"the user's catalog",
        "warehouse/serving.duckdb": b"the user's serving file",
        "warehouse/report/markhouse-report.html": b"the user's report",
        ".dagster_home/dagster.yaml": (REPO / "dagster.yaml").read_bytes(),
    }
    for name, content in users.items():
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        (checkout / name).write_bytes(content)

    def files() -> dict[str, str]:
        return {
            str(p.relative_to(checkout)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in checkout.rglob("*")
            if p.is_file() and ".venv" not in p.relative_to(checkout).parts
        }

    before = files()
    host = tmp_path / "var-lib-markhouse"
    home = tmp_path / "home"
    home.mkdir()
    pg = database(postgres, "readme_lake").replace("postgresql://postgres:@", "postgresql://postgres:secret@")
    pg_dagster = database(postgres, "readme_dagster").replace(
        "postgresql://postgres:@", "postgresql://postgres:secret@"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MARKHOUSE_", "DAGSTER_", "APERIODIC_", "KAIKO_", "CAYOLARGO_"))
    }
    env.update(HOME=str(home), PYTHONWARNINGS="ignore")
    said = re.search(
        r"^Its last line names the lake \(`(done: .*?); \.\.\.`\)", README.read_text(), re.M | re.S
    )
    assert said is not None
    last_line = " ".join(said[1].split())
    with object_store("markhouse-lake") as store:
        replaced = {
            "postgresql://markhouse:secret@db.internal:5432/lake": pg,
            "postgresql://markhouse:secret@db.internal:5432/dagster": pg_dagster,
            "postgresql://markhouse:***@db.internal:5432/lake": pg.replace(":secret@", ":***@"),
            "/var/lib/markhouse": str(host),
            "s3.internal:9000": store.endpoint,
            "MARKHOUSE_S3_USE_SSL=true": "MARKHOUSE_S3_USE_SSL=false",
            "USE_SSL true": "USE_SSL false",
            "writer-key-id": store.writer.key_id,
            "writer-secret": store.writer.secret,
            "reader-key-id": store.reader.key_id,
            "reader-secret": store.reader.secret,
            "LOAD httpfs": f"LOAD '{extension_path('duckdb_extension_httpfs', 'httpfs')}'",
        }
        assert all(old in sh.body + sql.body + last_line for old in replaced), "a README address changed"

        def adapt(text: str) -> str:
            for old, new in replaced.items():
                text = text.replace(old, new)
            return text

        out = subprocess.run(
            ["bash", "-e", "-c", adapt(sh.body)],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
        # the last line names the lake, as the README shows it (password hidden), not a catalog file
        assert out.stdout.rstrip().splitlines()[-1].startswith(adapt(last_line) + ";"), out.stdout[-1000:]
        assert ":secret@" not in out.stdout + out.stderr
        assert (host / "serving.duckdb").exists() and not (host / "markhouse.sqlite").exists()

        # the BI read with the read-only key equals the lake's own count (DuckLake attached, writer key)
        con = duckdb.connect(str(host / "serving.duckdb"), read_only=True)
        try:
            rows = con.execute(adapt(sql.body)).fetchall()
        finally:
            con.close()
        for name, value in {
            **store.env(store.writer),
            "MARKHOUSE_DATA_PATH": "s3://markhouse-lake/markhouse",
        }.items():
            monkeypatch.setenv(name, value)
        lake = Warehouse(host / "markhouse.sqlite", catalog=pg)
        with lake.reader() as lake_con:
            counted = lake_con.execute(
                "select vendor, strftime(ts, '%Y-%m'), count(*) from marts.fct_price_interval group by all"
            ).fetchall()
    assert rows == counted and [(v, m) for v, m, _ in rows] == [("kaiko", "2026-03")], rows
    assert files() == before
