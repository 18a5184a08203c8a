"""A throw-away PostgreSQL cluster for the event-store tests: Debian's server binaries (`make test` installs the
`postgresql` package when missing), a data directory under a temporary directory, loopback only, no fsync, stopped
and deleted at the end of the session.

On CI a server that cannot be started fails the tests that need it; elsewhere they skip, with the reason printed.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["throwaway_cluster"]


class Unavailable(RuntimeError):
    """No PostgreSQL server can be started here; the message says why."""


def _binary(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)),
                                       None)
    if not found:
        raise Unavailable(f"no {name}: install Debian's postgresql package (make test does, as root)")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def throwaway_cluster() -> Iterator[str]:
    """Starts a cluster and yields its SQLAlchemy URL (user `mistrec`, trust on loopback); stops and deletes it.
    PostgreSQL refuses to run as root: as root, the cluster runs as the `postgres` user the package creates."""
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    as_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="mistrec-pg-"))
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError as exc:
            raise Unavailable("running as root and there is no postgres user to run the server as") from exc
        os.chown(root, owner.pw_uid, owner.pw_gid)
        runuser = shutil.which("runuser")
        if not runuser:
            raise Unavailable("running as root and there is no runuser to start the server as postgres")
        as_user = [runuser, "-u", "postgres", "--"]
    data, port = root / "data", _free_port()
    log = root / "server.log"
    try:
        subprocess.run([*as_user, initdb, "-D", str(data), "-U", "mistrec", "-A", "trust", "--no-sync",
                        "-E", "UTF8"], check=True, capture_output=True, timeout=120)
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        started = subprocess.run([*as_user, pg_ctl, "-D", str(data), "-o", options, "-l", str(log), "-w", "-t", "60",
                                  "start"], capture_output=True, timeout=90)
        if started.returncode:
            tail = log.read_text()[-500:] if log.is_file() else started.stderr.decode()[-500:]
            raise Unavailable(f"pg_ctl start failed: {tail.strip()}")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(root, ignore_errors=True)
        detail = getattr(exc, "stderr", b"") or b""
        raise Unavailable(f"{exc}: {detail.decode(errors='replace')[-300:]}") from exc
    try:
        yield f"postgresql+psycopg://mistrec@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True,
                       timeout=60)
        shutil.rmtree(root, ignore_errors=True)
