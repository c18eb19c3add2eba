"""A throwaway PostgreSQL server for the team store's tests: a fresh cluster in a temporary folder, listening on a
free loopback port, removed afterwards (`make postgres` installs Debian's PostgreSQL where it is missing).

PostgreSQL refuses to run as root: as root, the cluster belongs to the `postgres` user (Debian's package makes
it), else to `nobody`, and its programs run under that user through runuser. Connections are trusted from
loopback only, for the test user.

Use: `pytest_plugins = ["pg"]` in a test module, then ask for `team_url` (a new, empty team store per test: its
own PostgreSQL database and data folder) or `pg_cluster`.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

USER = "layerjoule"  # the cluster's superuser, whom the tests connect as


def pg_bin(name: str) -> str:
    """A PostgreSQL program: on the PATH, else in Debian's /usr/lib/postgresql/<version>/bin (newest)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    if not candidates:
        pytest.fail(f"PostgreSQL's {name} is not installed: `make postgres` installs Debian's postgresql package")
    return candidates[-1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Cluster:
    folder: Path
    port: int
    as_user: list[str]  # the command prefix running a program as the cluster's owner
    _names = itertools.count(1)

    def run(self, *command: str) -> subprocess.CompletedProcess:
        return subprocess.run([*self.as_user, *command], capture_output=True, text=True, timeout=120, check=True)

    def conninfo(self, dbname: str) -> str:
        return f"host=127.0.0.1 port={self.port} dbname={dbname} user={USER}"

    def create_database(self) -> str:
        name = f"lj_{os.getpid()}_{next(self._names)}"
        subprocess.run([pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, name],
                       check=True, capture_output=True, text=True, timeout=60)
        return name

    def psql(self, dbname: str, sql: str) -> str:
        return subprocess.run([pg_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, "-d", dbname,
                               "-Atc", sql], check=True, capture_output=True, text=True, timeout=60).stdout


def _owner() -> tuple[list[str], int | None, int | None]:
    """How to run the server's programs, and as whom to own its folder: ourselves unless we are root."""
    if os.geteuid() != 0:
        return [], None, None
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        if shutil.which("runuser"):
            return ["runuser", "-u", name, "--"], entry.pw_uid, entry.pw_gid
        return ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups"], \
            entry.pw_uid, entry.pw_gid
    pytest.fail("running as root without a `postgres` or `nobody` user to run PostgreSQL as")


def start_cluster() -> Cluster:
    as_user, uid, gid = _owner()
    folder = Path(tempfile.mkdtemp(prefix="layerjoule-pg-"))
    if uid is not None:
        os.chown(folder, uid, gid)
    data = folder / "data"
    subprocess.run([*as_user, pg_bin("initdb"), "-D", str(data), "-U", USER, "--auth=trust", "-E", "UTF8",
                    "--no-sync", "--no-instructions"], check=True, capture_output=True, text=True, timeout=120)
    # A test server: no durability (fsync off), sockets in our folder, TCP on loopback only.
    for attempt in range(5):
        port = _free_port()
        options = (f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
                   "-c full_page_writes=off -c max_connections=200")
        started = subprocess.run([*as_user, pg_bin("pg_ctl"), "-D", str(data), "-o", options, "-l",
                                  str(folder / "server.log"), "-w", "-t", "60", "start"],
                                 capture_output=True, text=True, timeout=120)
        if started.returncode == 0:
            return Cluster(folder, port, as_user)
        if attempt == 4:
            log = (folder / "server.log").read_text(errors="replace")[-2000:]
            shutil.rmtree(folder, ignore_errors=True)
            pytest.fail(f"PostgreSQL did not start: {started.stderr.strip()}\n{log}")
    raise AssertionError("unreachable")


def stop_cluster(cluster: Cluster) -> None:
    subprocess.run([*cluster.as_user, pg_bin("pg_ctl"), "-D", str(cluster.folder / "data"), "-m", "immediate",
                    "-w", "stop"], capture_output=True, timeout=120)
    shutil.rmtree(cluster.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster():
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        stop_cluster(cluster)


@pytest.fixture
def team_url(pg_cluster, tmp_path) -> str:
    """A new team store: `ducklake:postgres:` URL of an empty PostgreSQL database, data in a fresh folder."""
    dbname = pg_cluster.create_database()
    return f"ducklake:postgres:{pg_cluster.conninfo(dbname)} data_path={tmp_path / 'lake'}/"
