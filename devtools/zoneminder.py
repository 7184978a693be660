"""A real ZoneMinder (Debian's ``zoneminder`` 1.36) recording gst-rtsp-server cameras, for
tests: MariaDB with its own data directory and socket, ZoneMinder's schema, its daemons
(``zmdc.pl`` running ``zmc`` per monitor and a purge-when-full ``zmfilter.pl``) and its JSON
API (CakePHP) on PHP's built-in server, all on free loopback ports and in one temp folder.

ZoneMinder reads its settings from ``/etc/zm`` (compiled in, no environment override). Rather
than write there, every ZoneMinder process runs in a private mount namespace (``unshare``, so
root) where a copy of ``/etc/zm`` with this instance's paths, a private
``/var/cache/zoneminder`` and a small tmpfs (the second storage area, to be filled) are mounted;
nothing outside the namespace changes. Monitors record in ``Record`` mode with camera
passthrough (no decoding, no encoding): a few percent of a core each.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from devtools.localsvc import ManagedProcess, ServiceError, free_port
from devtools.processes import kill_popen, stop_popen
from devtools.proctree import alive, with_environ
from devtools.rtspserver import make_gst_rtsp

ZM_CONF = Path("/etc/zm")
ZM_CACHE = Path("/var/cache/zoneminder")
API_WEBROOT = Path("/usr/share/zoneminder/www/api/app/webroot")
SCHEMA = Path("/usr/share/zoneminder/db/zm_create.sql")
MARKER = "PANTAU_ZONEMINDER"  # in the environment of every process of one instance
START_TIMEOUT_S = 40.0  # each step; ZoneMinder records about 6 s after zmdc starts (idle machine)
FPS, SIZE, VIDEO_S = 5, (320, 240), 480  # the cameras' stream: small, slow, long enough
SMALL_STORAGE_MB = 8  # the tmpfs of storage area 2 (monitor 3 records there)
FILTER_INTERVAL_S = 5  # zmfilter.pl runs its filters this often (ZoneMinder's default: 60)
USER, PASSWORD = "pantau", "s3cret"

# PHP's built-in server under /zm/api, as Apache serves it. CakePHP's index.php knows the
# built-in server but only at the root, and takes PATH_INFO over REQUEST_URI.
ROUTER = """<?php
$prefix = '/zm/api';
$uri = $_SERVER['REQUEST_URI'];
if (strncmp($uri, $prefix . '/', strlen($prefix) + 1) !== 0) {
    http_response_code(404);
    return true;
}
unset($_SERVER['PATH_INFO']);
$_SERVER['REQUEST_URI'] = substr($uri, strlen($prefix));
$_SERVER['SCRIPT_NAME'] = $_SERVER['PHP_SELF'] = '/index.php';
chdir('%(webroot)s');
require 'index.php';
"""

# Inside the namespace: the instance's /etc/zm and cache, the small storage's tmpfs; then hold
# the namespace open for the processes that join it (nsenter).
HOLDER = (
    'mount --bind "$1" /etc/zm && mount --bind "$2" /var/cache/zoneminder '
    '&& mount -t tmpfs -o size="$4"m pantau-zm "$3" && echo ready && exec sleep infinity'
)


def zoneminder_available() -> str | None:
    """None if a ZoneMinder can run here, else what is missing and how to get it."""
    missing = [
        b for b in ("zmc", "zmdc.pl", "mariadbd", "mariadb-install-db", "php", "unshare")
        if shutil.which(b, path="/usr/sbin:/usr/bin:/sbin:/bin") is None
    ]  # fmt: skip
    if missing or not SCHEMA.exists():
        return (
            f"ZoneMinder is missing ({', '.join(missing) or SCHEMA}): `make system-packages` "
            "installs the Debian packages zoneminder and mariadb-server"
        )
    if os.geteuid() != 0:
        return "the ZoneMinder fixture mounts a private /etc/zm in a namespace: run as root"
    return None


def encode_video(path: Path) -> Path:
    """A small H.264 stream (a bar sweeping across), as the cameras send it."""
    width, height = SIZE
    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "g": str(FPS * 2), "bf": "0"}
        for i in range(FPS * VIDEO_S):
            image = np.full((height, width, 3), 40, np.uint8)
            image[:, (i * 4) % width : (i * 4) % width + 20] = 220
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@dataclass
class ZoneMinder:
    """One ZoneMinder with ``cameras`` monitors (ids 1..n), each on its own RTSP server.

    Monitor ``n`` (the last) records to storage area 2, a small tmpfs that ``fill_storage``
    fills; the others to area 1. Every monitor starts with a 40-day-old event, so each has
    40 days of retention until its storage fills and ZoneMinder purges the oldest events, and
    with the hour before its first real event recorded (seeded rows).
    """

    base: Path
    cameras: int = 3
    api_port: int = field(default_factory=free_port)
    servers: list[ManagedProcess] = field(default_factory=list)
    _holder: subprocess.Popen[bytes] | None = None
    _db: subprocess.Popen[bytes] | None = None
    _api: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The ZoneMinder URL a recorder config takes (the folder holding ``api/``)."""
        return f"http://127.0.0.1:{self.api_port}/zm"

    @property
    def small_storage(self) -> Path:
        """Storage area 2's path (a tmpfs inside the namespace)."""
        return self.base / "storage2"

    def start(self) -> None:
        """Everything, in order; raises ServiceError with the failing step's log (and leaves
        nothing running)."""
        missing = zoneminder_available()
        if missing:
            raise ServiceError(missing)
        if len(str(self.small_storage)) > 60:  # Storage.Path is a varchar(64)
            raise ServiceError(f"ZoneMinder's base folder {self.base} is too long: use a short one")
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        for sub in ("etc/conf.d", "cache/temp", "db", "events", "storage2", "run", "logs", "map"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        video = self.base / "camera.mkv"
        self.servers = [
            make_gst_rtsp(self.base / f"cam{i}", {"cam": f"{video}:h264"})
            for i in range(1, self.cameras + 1)
        ]
        with ThreadPoolExecutor(1) as pool:  # the cameras start while the database does
            cameras = pool.submit(self._start_cameras, video)
            self._start_database()
            self._configure()
            cameras.result()
        self._start_namespace()
        (self.base / "router.php").write_text(ROUTER % {"webroot": API_WEBROOT})
        self._api = self._popen(
            "api",
            [*self._enter(), "php", "-d", "display_errors=stderr", "-S",
             f"127.0.0.1:{self.api_port}", "-t", str(API_WEBROOT), str(self.base / "router.php")],
        )  # fmt: skip
        monitors = [["start", "zmc", "-m", str(i)] for i in range(1, self.cameras + 1)]
        for args in [["startup"], *monitors, ["start", "zmfilter.pl", "--filter_id=3", "--daemon"]]:
            self._run([*self._enter(), "zmdc.pl", *args], "zmdc")
        self._wait(lambda: self._recording() == self.cameras, "every monitor recording")
        # The hour before was recorded too (seeded rows, ending where the first real event
        # starts), so a test's window holds only what the test does.
        self.sql(
            "UPDATE Events AS b JOIN Events AS e ON e.MonitorId = b.MonitorId"
            " AND e.EndDateTime IS NULL SET b.EndDateTime = e.StartDateTime,"
            " b.Length = TIMESTAMPDIFF(SECOND, b.StartDateTime, e.StartDateTime)"
            " WHERE b.Name LIKE 'Before-%'"
        )

    def _start_cameras(self, video: Path) -> None:
        encode_video(video)
        for server in self.servers:
            server.start()

    def stop(self) -> None:
        """Stop the daemons, the API, the database and the cameras; nothing is left."""
        if self._holder is not None and self._holder.poll() is None:
            with contextlib.suppress(ServiceError, subprocess.TimeoutExpired):
                self._run([*self._enter(), "zmdc.pl", "shutdown"], "zmdc", timeout_s=15)
        for proc in with_environ(MARKER, str(self.base)):
            with contextlib.suppress(ProcessLookupError):
                if alive(proc) and proc.pid not in {p.pid for p in self._popens()}:
                    os.kill(proc.pid, signal.SIGKILL)
        stop_popen(self._api)
        stop_popen(self._db, whole_group=False)
        kill_popen(self._holder)  # its tmpfs goes with the namespace
        for server in self.servers:
            server.stop()

    def stop_camera(self, monitor: int) -> None:
        """The camera's RTSP server goes away (its stream stops)."""
        self.servers[monitor - 1].stop()

    def start_camera(self, monitor: int) -> None:
        """The camera's RTSP server is back on the same port."""
        self.servers[monitor - 1].start()

    def fill_storage(self) -> None:
        """Fill storage area 2 to the last byte (ZoneMinder's purge filter then deletes its
        oldest events, every one it can)."""
        filler = self.small_storage / "filler"
        self._run([*self._enter(), "sh", "-c", f"cat /dev/zero > {filler}; true"], "fill")

    def sql(self, statements: str, *, database: str = "zm") -> str:
        """Run SQL in ZoneMinder's database; the tab-separated rows."""
        return self._run(
            ["mariadb", f"--socket={self.base / 'mysqld.sock'}", "-uroot", "-N", database,
             "-e", statements],
            "mariadb",
        )  # fmt: skip

    def _start_database(self) -> None:
        data = self.base / "db"
        self._run(
            ["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=root",
             "--auth-root-authentication-method=normal", "--skip-test-db"],
            "mariadb-install-db",
        )  # fmt: skip
        self._db = self._popen(
            "mariadbd",
            ["mariadbd", "--no-defaults", f"--datadir={data}", "--user=root", "--skip-networking",
             f"--socket={self.base / 'mysqld.sock'}", f"--pid-file={self.base / 'mysqld.pid'}",
             "--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M",
             "--innodb-flush-log-at-trx-commit=0", "--skip-log-bin", "--performance-schema=OFF"],
        )  # fmt: skip
        self._wait(self._db_ready, "MariaDB")
        self._run(
            ["sh", "-c", f"mariadb --socket={self.base / 'mysqld.sock'} -uroot < {SCHEMA}"],
            "schema",
        )

    def _db_ready(self) -> bool:
        try:
            self.sql("SELECT 1", database="mysql")
        except ServiceError:
            return False
        return True

    def _configure(self) -> None:
        shutil.copytree(ZM_CONF, self.base / "etc", dirs_exist_ok=True)
        paths = {
            "ZM_DB_HOST": f"localhost:{self.base / 'mysqld.sock'}",
            "ZM_DIR_EVENTS": self.base / "events", "ZM_PATH_MAP": self.base / "map",
            "ZM_PATH_SOCKS": self.base / "run", "ZM_PATH_LOGS": self.base / "logs",
            "ZM_PATH_SWAP": self.base / "cache/temp", "ZM_DIR_EXPORTS": self.base / "cache/temp",
            "ZM_WEB_USER": "root", "ZM_WEB_GROUP": "root",
            "ZM_DB_NAME": "zm", "ZM_DB_USER": "zmuser", "ZM_DB_PASS": "zmpass",
        }  # fmt: skip
        conf = "".join(f"{k}={v}\n" for k, v in paths.items())
        (self.base / "etc/conf.d/99-pantau.conf").write_text(conf)
        password = self._run(
            ["php", "-r", f"echo password_hash('{PASSWORD}', PASSWORD_BCRYPT);"], "php"
        )
        last = self.cameras
        monitors = ",".join(
            f"('cam{i}', 'Ffmpeg', 'Record', 1, 0, 'rtsp://127.0.0.1:{s.port}/cam', 'rtpRtsp', "
            f"{SIZE[0]}, {SIZE[1]}, 4, 0, 2, 60, 10, {2 if i == last else 1}, 3, 0, 0)"
            for i, s in enumerate(self.servers, start=1)
        )
        old = ",".join(
            f"({i}, {2 if i == last else 1}, 'Old-{i}', 'Continuous', NOW() - INTERVAL 40 DAY, "
            f"NOW() - INTERVAL 40 DAY + INTERVAL 60 SECOND, {SIZE[0]}, {SIZE[1]}, 60, 300, 1)"
            for i in range(1, last + 1)
        )
        before = ",".join(
            f"({i}, {2 if i == last else 1}, 'Before-{i}', 'Continuous', NOW() - INTERVAL 1 HOUR,"
            f" NOW(), {SIZE[0]}, {SIZE[1]}, 3600, 18000, 1)"
            for i in range(1, last + 1)
        )
        purge = (
            '{"sort_field":"Id","terms":[{"val":0,"attr":"Archived","op":"="},'
            '{"cnj":"and","attr":"StorageId","op":"=","val":"2"},'
            '{"cnj":"and","val":95,"attr":"DiskPercent","op":">="},'
            '{"cnj":"and","attr":"EndDateTime","op":"IS NOT","val":"NULL"}],'
            '"limit":100,"sort_asc":1}'
        )
        self.sql(
            "CREATE USER zmuser@localhost IDENTIFIED BY 'zmpass';"
            "GRANT ALL ON zm.* TO zmuser@localhost;"
            f"UPDATE Config SET Value='1' WHERE Name='ZM_OPT_USE_AUTH';"
            f"UPDATE Config SET Value='pantau-test-{os.getpid()}' WHERE Name='ZM_AUTH_HASH_SECRET';"
            f"UPDATE Config SET Value='{FILTER_INTERVAL_S}'"
            " WHERE Name='ZM_FILTER_EXECUTE_INTERVAL';"
            f"UPDATE Storage SET Path='{self.base / 'events'}' WHERE Id=1;"
            f"INSERT INTO Storage (Path, Name) VALUES ('{self.small_storage}', 'Small');"
            f"INSERT INTO Users (Username, Password, Enabled, Stream, Events, Control, Monitors,"
            f" `Groups`, Devices, System, MaxBandwidth, MonitorIds, TokenMinExpiry, APIEnabled)"
            f" VALUES ('{USER}', '{password}', 1, 'View', 'View', 'None', 'View', 'View', 'None',"
            f" 'View', '', '', 0, 1);"
            f"INSERT INTO Monitors (Name, Type, `Function`, Enabled, DecodingEnabled, Path, Method,"
            f" Width, Height, Colours, SaveJPEGs, VideoWriter, SectionLength, MinSectionLength,"
            f" StorageId, ImageBufferCount, PreEventCount, PostEventCount) VALUES {monitors};"
            f"INSERT INTO Events (MonitorId, StorageId, Name, Cause, StartDateTime, EndDateTime,"
            f" Width, Height, Length, Frames, StateId) VALUES {old}, {before};"
            f"INSERT INTO Filters (Name, UserId, Query_json, AutoDelete, Background)"
            f" VALUES ('PurgeSmallWhenFull', 1, '{purge}', 1, 1);"
        )
        ids = self.sql("SELECT Id FROM Filters WHERE Name='PurgeSmallWhenFull'").split()
        if ids != ["3"]:
            raise ServiceError(f"the purge filter got id {ids}, the fixture starts filter 3")

    def _start_namespace(self) -> None:
        argv = [
            "unshare", "--mount", "--propagation", "private", "sh", "-c", HOLDER, "sh",
            str(self.base / "etc"), str(self.base / "cache"), str(self.small_storage),
            str(SMALL_STORAGE_MB),
        ]  # fmt: skip
        self._holder = self._popen("namespace", argv, stdout=subprocess.PIPE)
        assert self._holder.stdout is not None
        if self._holder.stdout.readline().strip() != b"ready":
            raise ServiceError(f"the mount namespace did not start: {self._log('namespace')}")

    def _enter(self) -> list[str]:
        assert self._holder is not None
        return ["nsenter", f"--target={self._holder.pid}", "--mount", "--"]

    def _recording(self) -> int:
        return int(self.sql("SELECT COUNT(*) FROM Events WHERE EndDateTime IS NULL") or 0)

    def _popen(self, name: str, argv: list[str], **kw: object) -> subprocess.Popen[bytes]:
        log = (self.base / f"{name}.log").open("ab")
        kw.setdefault("stdout", log)
        env = {**os.environ, MARKER: str(self.base)}
        process = subprocess.Popen(
            argv,
            stderr=log,
            cwd=self.base,
            env=env,
            start_new_session=True,
            **kw,  # type: ignore[call-overload]
        )
        log.close()
        return process  # type: ignore[no-any-return]

    def _popens(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in (self._holder, self._db, self._api) if p is not None]

    def _run(self, argv: list[str], name: str, *, timeout_s: float = 60) -> str:
        env = {**os.environ, MARKER: str(self.base)}
        done = subprocess.run(
            argv, capture_output=True, cwd=self.base, env=env, timeout=timeout_s, check=False
        )
        with (self.base / f"{name}.log").open("ab") as log:
            log.write(done.stdout + done.stderr)
        if done.returncode != 0:
            raise ServiceError(
                f"{name} failed ({done.returncode}): {done.stderr.decode(errors='replace')[-800:]}"
            )
        return done.stdout.decode(errors="replace").strip()

    def _log(self, name: str) -> str:
        path = self.base / f"{name}.log"
        return path.read_text(errors="replace")[-1500:] if path.exists() else ""

    def _wait(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.1)
        raise ServiceError(f"ZoneMinder: no {what} within {START_TIMEOUT_S} s; logs in {self.base}")
