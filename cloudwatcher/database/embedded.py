"""A private PostgreSQL server in ``<state_dir>/postgres``, for the zero-configuration default.

pgserver (PyPI) ships PostgreSQL binaries in its wheel; we use those binaries, else the ones
installed on the machine. We do not use pgserver's own ``PostgresServer`` lifecycle class: as
root it opens every parent folder of the data directory to all users (``chmod o+rx``) and it
stops the server when the last Python process that used it exits, which would cut the daemon
off whenever a short CLI command finished. Our rules instead:

- the server listens only on a Unix socket (no TCP port to collide or expose);
- it is started on demand, under a file lock, by whichever process needs it first, and stays
  up for the others; ``cloudwatcher run`` stops it on exit only if it started it;
- every process that uses it holds a shared lock on ``.postgres.users`` beside the data
  directory while it does (the kernel drops the lock when the process dies), so a short CLI
  command that had to start the server stops it again only when no daemon holds that lock;
- as root, the server runs as the ``postgres`` system user (PostgreSQL refuses root; never
  ``nobody``, whose files every other ``nobody`` service could reach). A folder above the
  data directory that keeps ``postgres`` out (``/root`` is 0700) gets a named ACL entry
  letting ``postgres`` alone pass, never ``o+x``; where no ACL can be set, the server is not
  started and the error says what to grant;
- a socket folder outside the data directory (paths too long for a Unix socket) is created
  exclusively: a folder already there is used only if it is a real, private folder of the
  server's user, never one someone else made or a symbolic link;
- the daemon and the commands connect as ``cloudwatcher``, a role that owns its database
  and nothing more (not a superuser), so a mistake in the daemon cannot reach the server.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import logging
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO
from urllib.parse import quote

from cloudwatcher.database import search_acl
from cloudwatcher.schema.sql import query

log = logging.getLogger(__name__)

DATABASE_NAME = "cloudwatcher"
SUPERUSER = "postgres"
#: The role the daemon and the commands connect as: the owner of DATABASE_NAME, nothing more.
APP_ROLE = "cloudwatcher"
_MAX_SOCKET_DIR = 90  # sun_path is 108 bytes; ".s.PGSQL.5432" needs the rest


class EmbeddedPostgresError(Exception):
    """The embedded server cannot be used here; the message says how to set database_url."""


def find_postgres_bin() -> Path:
    """pgserver's bundled binaries, else ``initdb`` on PATH, else ``/usr/lib/postgresql/*/bin``."""
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.submodule_search_locations:
        bundled = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        if (bundled / "initdb").is_file():
            return bundled
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    if candidates:
        return candidates[0].parent
    raise EmbeddedPostgresError(
        "no PostgreSQL server binaries found (pgserver not installed, no initdb on PATH or in "
        "/usr/lib/postgresql/*/bin); set database_url (or CLOUDWATCHER_DATABASE_URL) to a "
        "PostgreSQL 15+ server"
    )


class EmbeddedPostgres:
    """The server whose data directory is ``data_dir``."""

    def __init__(self, data_dir: Path, *, extra_settings: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir.absolute()
        self.bin_dir = find_postgres_bin()
        self.extra_settings = extra_settings or {}
        self.started_here = False
        self._run_as = self._server_user()
        self._users: IO[str] | None = None  # our shared lock on .postgres.users, while we use it

    # ------------------------------------------------------------------ public
    def url(self, database: str = DATABASE_NAME) -> str:
        """A libpq URI for ``database`` as the application role, over the server's Unix socket."""
        return self._url(APP_ROLE, database)

    def superuser_url(self, database: str = "postgres") -> str:
        """A libpq URI as the server's superuser: for administration and tests, never the daemon."""
        return self._url(SUPERUSER, database)

    def _url(self, role: str, database: str) -> str:
        return f"postgresql://{role}@/{database}?host={quote(str(self._socket_dir()), safe='/')}"

    def ensure_running(self) -> str:
        """Initialise and start the server if needed; create the database; return its URL."""
        with self._lock():
            if not (self.data_dir / "PG_VERSION").is_file():
                self._initdb()
            if not self.is_running():
                self._start()
                self.started_here = True
            self._ensure_database()
            self._hold_users_lock()
        return self.url()

    def release(self) -> None:
        """This process no longer uses the server (its shared lock on ``.postgres.users`` goes)."""
        if self._users is not None:
            self._users.close()
            self._users = None

    def stop_if_unused(self) -> bool:
        """Release the server and stop it when no other process uses it; True when it was stopped."""
        self.release()
        with self._lock(), self._users_path().open("a") as users:
            try:
                fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # a daemon (or another command) holds its shared lock
            try:
                if self.is_running():
                    self._pg_ctl("stop", "-m", "fast", "-w", "-t", "60")
                    return True
                return False
            finally:
                fcntl.flock(users, fcntl.LOCK_UN)

    def is_running(self) -> bool:
        result = self._pg_ctl("status", check=False)
        return result.returncode == 0

    def stop(self, mode: str = "fast") -> None:
        with self._lock():
            if self.is_running():
                self._pg_ctl("stop", "-m", mode, "-w", "-t", "60")

    # ------------------------------------------------------------------ internals
    def _server_user(self) -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam("postgres")
        except KeyError:
            raise EmbeddedPostgresError(
                "running as root, and there is no 'postgres' system user to run the embedded "
                "server (PostgreSQL refuses root); create one (useradd --system postgres) or set "
                "database_url"
            ) from None

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.data_dir.parent / ".postgres.lock"
        with lock_path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _users_path(self) -> Path:
        return self.data_dir.parent / ".postgres.users"

    def _hold_users_lock(self) -> None:
        """Take the shared lock that marks this process as a user (called under the start lock)."""
        if self._users is None:
            users = self._users_path().open("a")
            fcntl.flock(users, fcntl.LOCK_SH)
            self._users = users

    def _socket_dir(self) -> Path:
        if len(str(self.data_dir)) <= _MAX_SOCKET_DIR:
            return self.data_dir
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"cloudwatcher-pg-{digest}"

    def _run(self, args: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, LC_ALL="C.UTF-8", LANG="C.UTF-8")
        env.pop("PGDATA", None)
        kwargs: dict[str, object] = {}
        if self._run_as is not None:
            kwargs = {"user": self._run_as.pw_uid, "group": self._run_as.pw_gid, "extra_groups": []}
        return subprocess.run(  # type: ignore[call-overload]
            args,
            env=env,
            capture_output=True,
            text=True,
            check=check,
            start_new_session=True,  # a Ctrl-C in the terminal must not reach the postmaster
            cwd="/",
            **kwargs,
        )

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._run([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args], check=check)

    def _check_server_user_reaches(self, path: Path) -> None:
        """As root: refuse, rather than open folders to everyone, when the server user cannot
        reach ``path`` (``cd`` as that user honours modes and ACLs alike)."""
        assert self._run_as is not None
        self._grant_search_on_parents(path)
        reached = self._run(["/bin/sh", "-c", 'cd -- "$1"', "sh", str(path)], check=False)
        if reached.returncode != 0:
            raise EmbeddedPostgresError(
                f"the embedded server runs as {self._run_as.pw_name!r}, which cannot reach {path}; "
                f"grant it search permission on the folders above (e.g. setfacl -m "
                f"u:{self._run_as.pw_name}:x FOLDER), choose another state_dir, or set database_url"
            )

    def _grant_search_on_parents(self, path: Path) -> None:
        """As root: where a folder above ``path`` keeps the server user out (``/root`` is 0700,
        and the default state folder lies under it), let that user alone pass with a named ACL
        entry (``u:postgres:x``), never by opening the folder to everyone."""
        assert self._run_as is not None
        user = self._run_as
        groups = {user.pw_gid, *os.getgrouplist(user.pw_name, user.pw_gid)}
        for parent in reversed(path.parents):
            try:
                if search_acl.can_search(parent, user.pw_uid, groups):
                    continue
                search_acl.grant_search(parent, user.pw_uid)
            except OSError as exc:  # no ACL support there: the check below says what to do
                log.warning("could not let %s search %s: %s", user.pw_name, parent, exc)
                return
            log.warning(
                "granted %s search permission on %s (an ACL entry for it alone) so the embedded server can reach %s",
                user.pw_name,
                parent,
                path,
            )

    def _prepare_dir(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self._run_as is not None:
            os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)
        path.chmod(0o700)
        if self._run_as is not None:
            self._check_server_user_reaches(path)

    def _make_socket_dir(self, path: Path) -> None:
        """Create the socket folder exclusively (``mkdir`` fails if anything is there), or accept
        one only if it is a real folder owned by the server's user and private to it."""
        owner_uid = os.geteuid() if self._run_as is None else self._run_as.pw_uid
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            info = os.lstat(path)
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != owner_uid or info.st_mode & 0o077:
                raise EmbeddedPostgresError(
                    f"{path} already exists and is not a private folder of the server's user; "
                    "remove it (nothing of ours is in it) and start again"
                ) from None
            return
        if self._run_as is not None:
            os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid, follow_symlinks=False)

    def _initdb(self) -> None:
        log.info("initialising the embedded PostgreSQL in %s", self.data_dir)
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise EmbeddedPostgresError(
                f"{self.data_dir} exists, is not empty and holds no PostgreSQL cluster; move it away"
            )
        self._prepare_dir(self.data_dir)
        try:
            self._run(
                [
                    str(self.bin_dir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    SUPERUSER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ]
            )
        except subprocess.CalledProcessError as exc:
            raise EmbeddedPostgresError(f"initdb failed: {exc.stderr.strip()}") from exc

    def _start(self) -> None:
        socket_dir = self._socket_dir()
        if socket_dir != self.data_dir:
            self._make_socket_dir(socket_dir)
        # jit=off: the JIT needs writable+executable memory, which the hardened unit forbids
        # (MemoryDenyWriteExecute=), and it buys nothing for the ledger's short queries.
        options = ["-c listen_addresses=''", f"-c unix_socket_directories='{socket_dir}'", "-c jit=off"]
        options += [f"-c {key}={value}" for key, value in self.extra_settings.items()]
        log_file = self.data_dir / "server.log"
        try:
            self._pg_ctl("start", "-w", "-t", "60", "-l", str(log_file), "-o", " ".join(options))
        except subprocess.CalledProcessError as exc:
            tail = ""
            with contextlib.suppress(OSError):
                tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-10:])
            raise EmbeddedPostgresError(f"embedded PostgreSQL did not start: {exc.stderr.strip()}\n{tail}") from exc
        log.info("embedded PostgreSQL started (socket in %s)", socket_dir)

    def _psql(self, database: str, sql: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``sql`` as the superuser (over the socket, which only the server's user reaches)."""
        host = str(self._socket_dir())
        psql = [str(self.bin_dir / "psql"), "-h", host, "-U", SUPERUSER, "-d", database, "-X", "-q", "-t", "-A"]
        result = self._run([*psql, "-v", "ON_ERROR_STOP=1", "-c", sql], check=False)
        if check and result.returncode != 0:
            raise EmbeddedPostgresError(f"embedded PostgreSQL refused {sql.split()[0]}: {result.stderr.strip()}")
        return result

    def _ensure_database(self) -> None:
        """The application role, and its database owned by it (taken over from the superuser
        for a database made by an earlier version, which connected as the superuser)."""
        for _ in range(50):
            if self._psql("postgres", PING, check=False).returncode == 0:
                break
            time.sleep(0.1)  # the server accepts connections a moment after pg_ctl -w returns
        self._psql("postgres", CREATE_APP_ROLE)
        owner = self._psql("postgres", DATABASE_OWNER)
        if not owner.stdout.strip():
            created = self._psql("postgres", CREATE_DATABASE, check=False)
            if created.returncode != 0 and "already exists" not in created.stderr:
                raise EmbeddedPostgresError(f"cannot create database {DATABASE_NAME}: {created.stderr.strip()}")
        elif owner.stdout.strip() != APP_ROLE:
            log.info("handing the embedded database over to the %r role", APP_ROLE)
            self._psql("postgres", HAND_OVER_DATABASE)
            self._psql(DATABASE_NAME, HAND_OVER_OBJECTS)


CREATE_APP_ROLE = query("database", "create_app_role").format(app_role=APP_ROLE)

HAND_OVER_OBJECTS = query("database", "hand_over_objects").format(app_role=APP_ROLE)

DATABASE_OWNER = query("database", "database_owner").format(database=DATABASE_NAME)
CREATE_DATABASE = query("database", "create_database").format(database=DATABASE_NAME, app_role=APP_ROLE)
HAND_OVER_DATABASE = query("database", "hand_over_database").format(database=DATABASE_NAME, app_role=APP_ROLE)
PING = query("database", "ping")
