"""Pytest plugin: the sample app's origin, PostgreSQL databases and real SSH test hosts.

Every host is a real OpenSSH `sshd` on 127.0.0.1 (own port, own host key) running in its own
mount namespace, where the host's checkout is bind-mounted at the same `workdir` path as on
every other host. Each checkout has its own app port; the app is started (v1.5.0 by default,
whose health answers 500). Needs root, `unshare`, `nsenter` and /usr/sbin/sshd.

Fixtures:
    ssh_keys             (session)  SshKeys: client key + known host-key material dir
    sample_repo          (function) SampleRepo from bot.sample.build_sample_origin(tmp_path)
    sample_repo_irreversible (function) same, with v1.6.0 whose migration cannot be downgraded
    pg_database          (function) SQLAlchemy URL of a fresh database in the session's own
                                     PostgreSQL cluster (`pg_admin_url()`)
    make_ssh_env         (function) factory: make_ssh_env(count=2, *, ref="v1.5.0", db_url=None,
                                     migrate=False, start=True, repo=None) -> SshEnv
    ssh_hosts            (function) list[TestHost] (2, or `indirect` param / @pytest.mark.hosts(n))
    ssh_env              (function) SshEnv, no database
    ssh_env_db           (function) SshEnv whose checkouts have .db_url/.pg_url -> pg_database
    ssh_env_migrated     (function) as ssh_env_db with the DB at v1.5.0's head (d4e5f6a1b2c3)

The same hosts without pytest (the benchmarks' lab, bench/lab.py): `ssh_keys_in`,
`ssh_env_factory` and `fresh_database`.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from bot.sample.build import SampleRepo, build_sample_origin
from bot.sample.hosts import libpq_url, provision_host_checkout, provision_host_releases
from tests.processes import free_port, restartable_port

SSHD = "/usr/sbin/sshd"
WORKDIR_ROOT = Path("/srv/rewind-test")
APP_NAME = "myapp"


# --------------------------------------------------------------------------------------------
# helpers


def wait_port(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before port {port} opened")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} did not open within {timeout}s")


SHIMS_DIR = Path(__file__).resolve().parent / "shims"


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (children first), from /proc."""
    try:
        children = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    return children + [d for c in children for d in _descendants(c)]


def on_every_host(hosts: Sequence[TestHost], do: Callable[[TestHost], object]) -> None:
    """`do(host)` for every host at once, in threads (a bench lab has dozens); the first error
    is raised once all are done."""
    with ThreadPoolExecutor(max_workers=max(1, min(len(hosts), 16))) as pool:
        list(pool.map(do, hosts))


def host_path_env() -> str:
    """PATH for SSH sessions: the stand-ins for sudo, systemctl, journalctl and docker first
    (tests/shims), then this interpreter's bin dir (python3 with alembic, psycopg)."""
    bindir = str(Path(sys.executable).parent)
    return ":".join([str(SHIMS_DIR), bindir, "/usr/local/sbin", "/usr/local/bin", "/usr/sbin",
                     "/usr/bin", "/sbin", "/bin"])  # fmt: skip


# --------------------------------------------------------------------------------------------
# data


@dataclass(frozen=True)
class SshKeys:
    dir: Path
    client_key: Path  # OpenSSH private key, mode 600
    client_public: str  # "ssh-ed25519 AAAA... rewind-test"

    def host_key(self, name: str) -> tuple[Path, str]:
        """(private key path, public key line) of host `name`, created on first use."""
        path = self.dir / f"host_{name}_ed25519"
        if not path.exists():
            key = asyncssh.generate_private_key("ssh-ed25519")
            path.write_bytes(key.export_private_key("openssh"))
            path.chmod(0o600)
            path.with_suffix(".pub").write_bytes(key.export_public_key("openssh"))
        public = path.with_suffix(".pub").read_text().split()
        return path, f"{public[0]} {public[1]}"


@dataclass
class TestHost:
    """One SSH test host. `workdir` is the checkout path as seen over SSH (the same on every
    host); `real_dir` is where this host's checkout really lives on disk."""

    __test__ = False  # not a test class for pytest

    name: str
    address: str
    port: int
    workdir: str
    real_dir: Path
    app_port: int
    sshd_pid: int = 0
    sshd_log: Path = field(default_factory=Path)
    host_key_line: str = ""  # "ssh-ed25519 AAAA..."
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    command_log: Path = field(default_factory=Path)  # every command run over SSH, as sent
    releases: bool = False  # the releases layout: the app runs in `workdir`/current

    @property
    def app_dir(self) -> str:
        """Where the app's files are, relative to `workdir` (for `run`)."""
        return "current" if self.releases else "."

    def commands(self) -> list[str]:
        """Every command this host was sent over SSH, in order (see `COMMAND_LOGGER`)."""
        if not self.command_log.is_file():
            return []
        records = self.command_log.read_bytes().split(b"\0")
        return [r.decode("utf-8", "replace") for r in records if r]

    def clear_commands(self) -> None:
        if self.command_log.is_file():
            self.command_log.write_bytes(b"")

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.app_port}/healthz"

    @property
    def api_health_url(self) -> str:
        return f"http://127.0.0.1:{self.app_port}/api/health"

    def ssh_sessions(self) -> int:
        """How many SSH sessions this host's sshd has opened so far (from its log)."""
        return self.sshd_log.read_text().count("Starting session:")

    def ssh_connections(self) -> int:
        """How many SSH connections (logins) this host's sshd has accepted so far (its log)."""
        return self.sshd_log.read_text().count("Accepted publickey")

    def _connection_pids(self) -> list[int]:
        """sshd's child per connection it holds open now (OpenSSH forks one per connection)."""
        children = Path(f"/proc/{self.sshd_pid}/task/{self.sshd_pid}/children")
        try:
            return [int(p) for p in children.read_text().split()]
        except OSError:
            return []

    def open_connections(self) -> int:
        """How many SSH connections this host's sshd holds open now: what sshd sees closed is
        gone from here."""
        return len(self._connection_pids())

    def drop_connections(self) -> int:
        """Cut every SSH connection to this host as a crash of the host's side would (SIGKILL
        to sshd's per-connection processes and whatever they run); sshd goes on listening.
        How many connections were cut."""
        pids = self._connection_pids()
        # The connections first, then what they ran (found before: orphans lose their parent):
        # killed the other way round, a session could still report its command's end to the
        # client before the connection went, which is not what a crash looks like.
        for pid in pids + [d for p in pids for d in _descendants(p)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(pids)

    def health_status(self) -> int:
        """What the app's /healthz answers now: 200 healthy (v1.4.2), 500 failing (v1.5.0)."""
        try:
            with urllib.request.urlopen(self.health_url, timeout=5) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    def run(self, cmd: str, *, check: bool = True, timeout: float = 60) -> str:
        """Run `cmd` with sh in this host's mount namespace, in `workdir`; return stdout+stderr."""
        proc = subprocess.run(
            ["nsenter", "-t", str(self.sshd_pid), "-m", "--", "sh", "-c",
             f"cd {shlex.quote(self.workdir)} && {cmd}"],
            capture_output=True, text=True, timeout=timeout, check=False,
            env={**os.environ, "PATH": host_path_env()},
        )  # fmt: skip
        out = proc.stdout + proc.stderr
        if check and proc.returncode != 0:
            raise RuntimeError(f"[{self.name}] {cmd!r} exited {proc.returncode}: {out}")
        return out


@dataclass
class SshEnv:
    hosts: list[TestHost]
    known_hosts: Path
    client_key: Path
    user: str = "root"
    workdir: str = ""
    repo: SampleRepo | None = None
    db_url: str | None = None  # SQLAlchemy URL (postgresql+psycopg://...)
    releases: int | None = None  # deploy.releases: the hosts keep releases/<version> + current

    @property
    def pg_url(self) -> str | None:
        return libpq_url(self.db_url) if self.db_url else None

    def connect_kwargs(self, host: TestHost) -> dict[str, Any]:
        """Keyword arguments for asyncssh.connect() to `host`, host key verified."""
        return {
            "host": host.address,
            "port": host.port,
            "username": self.user,
            "client_keys": [str(self.client_key)],
            "known_hosts": str(self.known_hosts),
        }

    def app_config(self, app: str = APP_NAME, backup_dir: Path | None = None) -> dict[str, Any]:
        """An `apps.<app>` entry of config/apps.yaml (commands strategy) for these hosts."""
        assert self.repo is not None
        cfg: dict[str, Any] = {
            "environment": "staging",
            "repo": str(self.repo.origin),
            "incident_channel": "C0INCIDENT",
            "notify": ["C0STAKEHOLDERS"],
            "operators": ["U0CAROL"],
            "approvers": ["U0ALICE", "U0BOB"],
            "ssh": {
                "user": self.user,
                "known_hosts": str(self.known_hosts),
                "client_keys": [str(self.client_key)],
            },
            "hosts": [{"name": h.name, "address": h.address, "port": h.port} for h in self.hosts],
            "deploy": {
                "strategy": "commands",
                "workdir": self.workdir,
                **({"releases": self.releases} if self.releases else {}),
                "commands": {
                    "fetch": "git fetch --tags origin && git checkout --force {ref}",
                    "install": "pip install -q -r requirements.txt",
                    "restart": "./run.sh restart",
                    "status": "./run.sh status",
                    "logs": "tail -n 50 app.log",
                    "version": "git describe --tags --always",
                },
            },
            "health": [
                item
                for h in self.hosts
                for item in (
                    {"url": h.health_url, "status": 200},
                    {"url": h.api_health_url, "json": {"status": "ok"}},
                )
            ],
            "logs": {"error_pattern": "(?i)\\b(error|critical|traceback)\\b"},
            "smoke": ["./smoke.sh login", "./smoke.sh checkout"],
            "monitor": {"duration": "2s", "interval": "1s"},
        }
        if self.db_url:
            bdir = backup_dir or (self.hosts[0].real_dir.parent / "backups")
            bdir.mkdir(parents=True, exist_ok=True)
            cfg["database"] = {
                "run_on": self.hosts[0].name,
                "alembic": "alembic -c alembic.ini",
                "backup": 'pg_dump --clean --if-exists "$(cat .pg_url)" > {backup}',
                "restore": 'psql -q -v ON_ERROR_STOP=1 "$(cat .pg_url)" < {backup}',
                "verify": "psql \"$(cat .pg_url)\" -tAc 'SELECT COUNT(*) FROM users;'",
                "backups": f"ls -1t {shlex.quote(str(bdir))}/{app}-*.sql",
            }
        return cfg


# --------------------------------------------------------------------------------------------
# sshd


SSHD_CONFIG = """\
ListenAddress 127.0.0.1
Port {port}
HostKey {host_key}
PidFile {pid_file}
AuthorizedKeysFile {authorized_keys}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
LogLevel VERBOSE
PrintMotd no
MaxStartups 100:30:200
MaxSessions 50
SetEnv PATH={path}
Subsystem sftp internal-sftp
ForceCommand {logger} {command_log}
"""

# sshd runs it (through the login shell) instead of the client's command, which it gets in
# $SSH_ORIGINAL_COMMAND: logged NUL-terminated (a command may span lines) in one write, then run
# as sshd would have run it, with the same shell, stdin, output and exit status.
COMMAND_LOGGER = """\
#!/bin/sh
log="$1"
if [ -z "${SSH_ORIGINAL_COMMAND+x}" ]; then exec "${SHELL:-/bin/sh}" -l; fi
printf '%s\\0' "$SSH_ORIGINAL_COMMAND" >> "$log"
exec "${SHELL:-/bin/sh}" -c "$SSH_ORIGINAL_COMMAND"
"""


def _start_sshd(host: TestHost, keys: SshKeys, tmp: Path) -> None:
    key_path, host.host_key_line = keys.host_key(host.name)
    authorized = tmp / "authorized_keys"
    if not authorized.exists():
        authorized.write_text(keys.client_public + "\n")
    logger = tmp / "command_logger.sh"
    if not logger.exists():
        logger.write_text(COMMAND_LOGGER)
        logger.chmod(0o755)
    host.command_log = tmp / f"commands_{host.name}.log"
    cfg = tmp / f"sshd_{host.name}.conf"
    cfg.write_text(
        SSHD_CONFIG.format(
            port=host.port,
            host_key=key_path,
            pid_file=tmp / f"sshd_{host.name}.pid",
            authorized_keys=authorized,
            path=host_path_env(),
            logger=shlex.quote(str(logger)),
            command_log=shlex.quote(str(host.command_log)),
        )
    )
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    check = subprocess.run([SSHD, "-t", "-f", str(cfg)], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"sshd config invalid: {check.stderr}")
    host.sshd_log = tmp / f"sshd_{host.name}.log"
    # The host's own shell start-up, not this machine's: bash reads ~/.bashrc for every command
    # sshd runs, and this machine's (pyenv init, a rehash each time) costs every session time
    # and, when two rehash at once, writes noise into the commands' output.
    bashrc = Path.home() / ".bashrc"
    quiet = tmp / "bashrc"
    quiet.write_text("# a test host's own: empty\n")
    own_bashrc = (
        f"mount --bind {shlex.quote(str(quiet))} {shlex.quote(str(bashrc))} && "
        if bashrc.is_file()
        else ""
    )
    script = (
        f"mkdir -p {shlex.quote(host.workdir)} && "
        f"mount --bind {shlex.quote(str(host.real_dir))} {shlex.quote(host.workdir)} && "
        f"{own_bashrc}exec {SSHD} -D -e -f {shlex.quote(str(cfg))}"
    )
    with host.sshd_log.open("wb") as log:
        host.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    host.sshd_pid = host.proc.pid  # unshare and sh exec, so this is sshd's pid
    try:
        wait_port(host.port, host.proc)
    except Exception as exc:
        raise RuntimeError(
            f"sshd of {host.name} did not start: {host.sshd_log.read_text()}"
        ) from exc


def _stop_host(host: TestHost) -> None:
    if host.proc is not None and host.proc.poll() is None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            host.run(f"{host.app_dir}/run.sh stop", check=False, timeout=15)
    pid_file = host.real_dir / ("shared" if host.releases else ".") / "app.pid"
    if pid_file.exists():  # an app left over, whatever started it
        with contextlib.suppress(ValueError, OSError):
            os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)
    if host.proc is not None:
        host.proc.terminate()
        try:
            host.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            host.proc.kill()
            host.proc.wait(timeout=5)


# --------------------------------------------------------------------------------------------
# PostgreSQL: a cluster of the session's own


class PgCluster:
    """A PostgreSQL cluster in a temp dir (initdb, then pg_ctl start on a free port, its socket
    in that dir, trust on 127.0.0.1), run as `postgres` when we are root (initdb refuses root)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="rewind-test-pg-"))
        self.data = self.dir / "data"
        self.port = restartable_port()
        self.as_owner: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self.as_owner = ["runuser", "-u", "postgres", "--"]

    @staticmethod
    def bindir() -> Path:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
        if not found:
            raise RuntimeError("no /usr/lib/postgresql/*/bin: apt-get install postgresql")
        return Path(found[-1])

    def _run(self, *cmd: str) -> None:
        done = subprocess.run([*self.as_owner, *cmd], capture_output=True, text=True, check=False,
                              timeout=120, cwd=self.dir)  # fmt: skip
        if done.returncode != 0:
            out = done.stdout + done.stderr
            raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}: {out}")

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> PgCluster:
        bindir = self.bindir()
        self._run(str(bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")  # fmt: skip
        # Throwaway data: no fsync. listen on 127.0.0.1 only, the socket in our own dir.
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off")  # fmt: skip
        self._run(str(bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "pg.log"),
                  "-w", "-t", "60", "-o", options, "start")  # fmt: skip
        return self

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError, subprocess.SubprocessError):
                self._run(str(self.bindir() / "pg_ctl"), "-D", str(self.data), "-m", "fast",
                          "-w", "-t", "30", "stop")  # fmt: skip
        shutil.rmtree(self.dir, ignore_errors=True)


_pg: list[PgCluster] = []


def pg_admin_url() -> str:
    """The admin URL of this test process's own PostgreSQL cluster, started on first use and
    stopped at the end of the session (or of the process, outside pytest). No variable points
    the tests at another server: one they did not start may hold someone's data."""
    if not _pg:
        cluster = PgCluster()
        try:
            _pg.append(cluster.start())
        except BaseException:
            cluster.stop()
            raise
        atexit.register(stop_session_pg)
    return _pg[0].admin_url


def stop_session_pg() -> None:
    while _pg:
        _pg.pop().stop()


def pytest_sessionfinish(session: pytest.Session) -> None:
    # Here, not at unconfigure: a pytest-xdist worker reports itself finished after this hook,
    # and may then be ended before a later hook could stop the server.
    stop_session_pg()


# --------------------------------------------------------------------------------------------
# fixtures


def ssh_keys_in(d: Path) -> SshKeys:
    """The client key pair in directory `d` (mode 700), made there on first use."""
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    d.chmod(0o700)
    client_key = d / "id_ed25519"
    if not client_key.exists():
        key = asyncssh.generate_private_key("ssh-ed25519", comment="rewind-test")
        client_key.write_bytes(key.export_private_key("openssh"))
        client_key.chmod(0o600)
        (d / "id_ed25519.pub").write_text(key.export_public_key("openssh").decode().strip() + "\n")
    public = (d / "id_ed25519.pub").read_text().strip()
    return SshKeys(dir=d, client_key=client_key, client_public=public)


@pytest.fixture(scope="session")
def ssh_keys(tmp_path_factory: pytest.TempPathFactory) -> SshKeys:
    return ssh_keys_in(tmp_path_factory.mktemp("ssh_keys"))


@pytest.fixture
def sample_repo(tmp_path: Path) -> SampleRepo:
    return build_sample_origin(tmp_path / "sample")


@pytest.fixture
def sample_repo_irreversible(tmp_path: Path) -> SampleRepo:
    return build_sample_origin(tmp_path / "sample-irreversible", irreversible=True)


@contextlib.contextmanager
def fresh_database(prefix: str = "rewind_test") -> Iterator[str]:
    """A new, empty PostgreSQL database (its SQLAlchemy URL) in the session's own cluster,
    dropped afterwards."""
    import psycopg

    admin = pg_admin_url()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_database() -> Iterator[str]:
    with fresh_database() as url:
        yield url


MakeSshEnv = Callable[..., SshEnv]


@contextlib.contextmanager
def ssh_env_factory(ssh_keys: SshKeys, tmp_path: Path) -> Iterator[MakeSshEnv]:
    """make(count=2, *, ref="v1.5.0", db_url=None, migrate=False, start=True, repo=None)
    -> SshEnv, with every host torn down on exit (for fixtures of any scope)."""
    created: list[TestHost] = []
    roots: list[Path] = []
    ports: set[int] = set()

    def port() -> int:  # apps start after every sshd: a port not yet bound may come up twice
        while (p := free_port()) in ports:
            pass
        ports.add(p)
        return p

    def make(
        count: int = 2,
        *,
        ref: str | None = None,
        db_url: str | None = None,
        migrate: bool = False,
        start: bool = True,
        repo: SampleRepo | None = None,
        releases: int | None = None,
    ) -> SshEnv:
        if repo is None:
            repo = build_sample_origin(tmp_path / f"origin-{uuid.uuid4().hex[:6]}")
        ref = ref or repo.bad
        uid = uuid.uuid4().hex[:10]
        root = WORKDIR_ROOT / uid
        roots.append(root)
        workdir = str(root / APP_NAME)
        tmp = tmp_path / f"hosts-{uid}"
        tmp.mkdir()
        known_hosts = tmp / "known_hosts"
        hosts: list[TestHost] = []
        for i in range(count):
            name = f"web{i + 1}"
            real_dir = tmp / name / APP_NAME
            host = TestHost(
                name=name,
                address="127.0.0.1",
                port=port(),
                workdir=workdir,
                real_dir=real_dir,
                app_port=port(),
                releases=releases is not None,
            )
            provision = provision_host_releases if releases else provision_host_checkout
            provision(repo.origin, real_dir, ref=ref, app_port=host.app_port, db_url=db_url)
            created.append(host)
            _start_sshd(host, ssh_keys, tmp)
            hosts.append(host)
        known_hosts.write_text(
            "".join(f"[{h.address}]:{h.port} {h.host_key_line}\n" for h in hosts)
        )
        if migrate:
            if not db_url:
                raise ValueError("migrate=True needs db_url")
            hosts[0].run(
                f"cd {hosts[0].app_dir} && alembic -c alembic.ini upgrade head", timeout=120
            )
        if start:
            on_every_host(hosts, lambda h: h.run(f"{h.app_dir}/run.sh start", timeout=120))
        return SshEnv(
            hosts=hosts,
            known_hosts=known_hosts,
            client_key=ssh_keys.client_key,
            workdir=workdir,
            repo=repo,
            db_url=db_url,
            releases=releases,
        )

    try:
        yield make
    finally:
        on_every_host(created, _stop_host)
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def make_ssh_env(ssh_keys: SshKeys, tmp_path: Path) -> Iterator[MakeSshEnv]:
    """Factory: make_ssh_env(count=2, *, ref="v1.5.0", db_url=None, migrate=False, start=True,
    repo=None) -> SshEnv. Hosts are torn down at the end of the test."""
    with ssh_env_factory(ssh_keys, tmp_path) as make:
        yield make


def _host_count(request: pytest.FixtureRequest) -> int:
    marker = request.node.get_closest_marker("hosts")
    if marker is not None and marker.args:
        return int(marker.args[0])
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None:
        for name in ("ssh_hosts", "ssh_env", "ssh_env_db", "ssh_env_migrated"):
            if name in callspec.params:
                return int(callspec.params[name])
    return 2


@pytest.fixture
def ssh_env(
    make_ssh_env: MakeSshEnv, sample_repo: SampleRepo, request: pytest.FixtureRequest
) -> SshEnv:
    """Hosts at v1.5.0 (app running, health 500), no database."""
    return make_ssh_env(_host_count(request), repo=sample_repo)


@pytest.fixture
def ssh_hosts(ssh_env: SshEnv) -> list[TestHost]:
    return ssh_env.hosts


@pytest.fixture
def ssh_env_db(
    make_ssh_env: MakeSshEnv,
    sample_repo: SampleRepo,
    pg_database: str,
    request: pytest.FixtureRequest,
) -> SshEnv:
    """Hosts at v1.5.0 whose checkouts point at `pg_database` (.db_url/.pg_url); DB empty."""
    return make_ssh_env(_host_count(request), repo=sample_repo, db_url=pg_database)


@pytest.fixture
def ssh_env_migrated(
    make_ssh_env: MakeSshEnv,
    sample_repo: SampleRepo,
    pg_database: str,
    request: pytest.FixtureRequest,
) -> SshEnv:
    """As ssh_env_db, with the database upgraded to v1.5.0's head (d4e5f6a1b2c3)."""
    return make_ssh_env(_host_count(request), repo=sample_repo, db_url=pg_database, migrate=True)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hosts(count): number of SSH test hosts (default 2)")
