"""The team store with its data on S3-compatible object storage, set up as docs/team-store.md says.

S3 itself cannot be reached from here: moto's server stands in for it on loopback. It speaks the S3 HTTP API
(buckets, PUT/GET/HEAD/LIST of objects, multipart uploads), which is all DuckDB's httpfs extension uses, so the
bytes of the run really travel through the S3 protocol to a bucket; the catalog is the real PostgreSQL of
tests/pg.py. The credentials are a DuckDB persistent secret made by the documented command, in a HOME of the test's
own.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from browser import free_port

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_traces" / "squeezenet_v1.1-layerloop"
BUCKET = "team-lake"

pytest_plugins = ["pg"]


@pytest.fixture(scope="module")
def s3_endpoint():
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    endpoint = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://{endpoint}/", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("moto's S3 server did not start") from None
                time.sleep(0.3)
        yield endpoint
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def _object_keys(endpoint: str) -> list[str]:
    with urllib.request.urlopen(f"http://{endpoint}/{BUCKET}?list-type=2", timeout=10) as response:
        return re.findall(r"<Key>([^<]+)</Key>", response.read().decode())


def layerjoule(*args: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env={**os.environ, "HOME": str(home)})


def test_a_run_imported_into_a_team_store_on_s3_reads_back_the_same(tmp_path, pg_cluster, s3_endpoint):
    home = tmp_path / "home"
    home.mkdir()
    # docs/team-store.md: the credentials, once per machine, kept as a DuckDB persistent secret of the user.
    secret = subprocess.run(
        [sys.executable, "-m", "cli.main", "db", "s3-secret", "--endpoint", s3_endpoint, "--path-style", "--no-ssl",
         "--region", "us-east-1"],
        env={**os.environ, "HOME": str(home), "AWS_ACCESS_KEY_ID": "lab", "AWS_SECRET_ACCESS_KEY": "lab-secret"},
        capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert secret.returncode == 0, secret.stderr
    assert (home / ".duckdb" / "stored_secrets" / "layerjoule_s3.duckdb_secret").is_file()
    urllib.request.urlopen(urllib.request.Request(f"http://{s3_endpoint}/{BUCKET}", method="PUT"), timeout=10)

    url = (f"ducklake:postgres:{pg_cluster.conninfo(pg_cluster.create_database())} "
           f"data_path=s3://{BUCKET}/layerjoule/")
    team = layerjoule("import", str(SAMPLE), "--db", url, "--json", home=home)
    assert team.returncode == 0, team.stderr
    [imported] = json.loads(team.stdout)
    assert imported["status"] == "imported"

    # The data went to the bucket as Parquet files, under the data path.
    keys = _object_keys(s3_endpoint)
    assert keys and all(key.startswith("layerjoule/") for key in keys)
    assert any(key.endswith(".parquet") for key in keys)

    # And reads back exactly as the same import into a DuckDB file does.
    local_db = tmp_path / "local.duckdb"
    assert layerjoule("import", str(SAMPLE), "--db", str(local_db), home=home).returncode == 0
    reports = [layerjoule("report", imported["run_id"], "--db", db, "--format", "json", home=home)
               for db in (url, str(local_db))]
    assert all(r.returncode == 0 for r in reports), [r.stderr for r in reports]
    from_team, from_file = (json.loads(r.stdout) for r in reports)
    assert from_team["layers"] == from_file["layers"] and len(from_team["layers"]) > 60
    assert from_team["run"]["energy_mj_per_inference"] == from_file["run"]["energy_mj_per_inference"]

    # Importing again is harmless there too.
    again = layerjoule("import", str(SAMPLE), "--db", url, "--json", home=home)
    assert json.loads(again.stdout)[0]["status"] == "already-present"


def test_s3_secret_wants_the_credentials_from_the_environment(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = subprocess.run([sys.executable, "-m", "cli.main", "db", "s3-secret"], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, env={**env, "HOME": str(tmp_path)})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "layerjoule db: db s3-secret: expected the credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"]
