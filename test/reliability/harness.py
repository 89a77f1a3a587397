"""Shared pieces of haematite's reliability suites.

A ThrowawayCluster is a PostgreSQL 15 cluster in a fresh directory under /tmp
that listens on a Unix socket in that directory only, so its port number
cannot collide with another server. It runs as the postgres OS user (through
runuser when the suite runs as root) and is deleted by stop().

The suites print one line per check that failed, and end with a summary line
and exit status 1 when any check failed (see Checks).
"""

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import psycopg2
import psycopg2.extensions

PGBIN = os.environ.get("HAEMATITE_PGBIN", "/usr/lib/postgresql/15/bin")

# Port of a suite's own cluster when HAEMATITE_RELIABILITY_PORT is not set:
# an offset from the port scripts/test.sh gives its server (54329 by default).
DEFAULT_PORT_OFFSET = 21


def default_port():
    """Return the port for a suite's own cluster."""
    if os.environ.get("HAEMATITE_RELIABILITY_PORT"):
        return int(os.environ["HAEMATITE_RELIABILITY_PORT"])
    return int(os.environ.get("HAEMATITE_PORT", "54329")) + DEFAULT_PORT_OFFSET


# prctl option that makes orphaned descendants children of the caller.
PR_SET_CHILD_SUBREAPER = 36


def become_subreaper():
    """Make this process the parent of the servers it starts.

    pg_ctl exits after starting the postmaster, which is then re-parented.
    As a subreaper this process inherits it and can reap it after a kill.
    Without that, a killed postmaster may stay a zombie for a while on
    machines whose init reaps slowly, and a zombie's pid in postmaster.pid
    makes the next start fail with "lock file already exists".
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print("warning: prctl(PR_SET_CHILD_SUBREAPER) failed", file=sys.stderr)


def run_as_postgres(args, **kwargs):
    """Run a command as the postgres OS user; return the CompletedProcess.

    As root the command goes through runuser. Any other user runs it
    directly, which works when that user owns the cluster.
    """
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--"] + list(args)
    return subprocess.run(args, check=True, **kwargs)


class ThrowawayCluster:
    """A PostgreSQL cluster that exists for one suite run."""

    def __init__(self, port=None, settings=None):
        self.port = port if port is not None else default_port()
        self.settings = dict(settings or {})
        self.directory = None
        self.data = None
        self.log = None

    def create(self):
        """Run initdb, write the settings and start the server."""
        become_subreaper()
        self.directory = tempfile.mkdtemp(prefix="haematite-reliability.")
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        self.data = os.path.join(self.directory, "data")
        self.log = os.path.join(self.directory, "server.log")
        run_as_postgres(
            [os.path.join(PGBIN, "initdb"), "--pgdata", self.data,
             "--username=postgres", "--auth=trust", "--encoding=UTF8",
             "--locale=C"],
            stdout=subprocess.DEVNULL)

        lines = [
            "",
            "# Throwaway cluster of a haematite reliability suite.",
            f"port = {self.port}",
            "listen_addresses = ''",
            f"unix_socket_directories = '{self.directory}'",
            "fsync = on",
        ]
        for name, value in self.settings.items():
            lines.append(f"{name} = '{value}'")
        conf = os.path.join(self.data, "postgresql.conf")
        with open(conf, "a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        self.start()

    def pg_ctl(self, *args):
        """Run pg_ctl on this cluster with the given arguments.

        Its messages are printed only when it fails: after a kill it always
        warns that another server might be running, because the old
        postmaster.pid is still there.
        """
        try:
            run_as_postgres([os.path.join(PGBIN, "pg_ctl"), "-D", self.data]
                            + list(args), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
        except subprocess.CalledProcessError as error:
            sys.stderr.write(error.stdout or "")
            raise

    def start(self):
        """Start the server and wait until it accepts connections.

        After a kill, this runs crash recovery before accepting connections.
        """
        try:
            self.pg_ctl("start", "-w", "-t", "120", "-l", self.log)
        except subprocess.CalledProcessError:
            self.print_log_tail()
            raise

    def postmaster_pid(self):
        """Return the postmaster's process id from postmaster.pid."""
        with open(os.path.join(self.data, "postmaster.pid"),
                  encoding="utf-8") as handle:
            return int(handle.readline())

    def kill_all(self):
        """Kill the postmaster and every process it started with SIGKILL.

        The postmaster is stopped first, so that it cannot start a new child
        between the listing of its children and the kill.
        """
        postmaster = self.postmaster_pid()
        os.kill(postmaster, signal.SIGSTOP)
        children = child_pids(postmaster)
        os.kill(postmaster, signal.SIGKILL)
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_for_exit([postmaster] + children)

    def stop(self, delete=True):
        """Stop the server if it runs and delete the cluster directory."""
        if self.data is None:
            return
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            try:
                self.pg_ctl("stop", "-m", "fast", "-w")
            except subprocess.CalledProcessError:
                try:
                    self.pg_ctl("stop", "-m", "immediate", "-w")
                except subprocess.CalledProcessError:
                    print(f"warning: could not stop the server in {self.data}",
                          file=sys.stderr)
        if delete:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.data = None

    def print_log_tail(self, lines=40):
        """Print the end of the server log to stderr."""
        try:
            with open(self.log, encoding="utf-8", errors="replace") as handle:
                tail = handle.readlines()[-lines:]
        except OSError:
            return
        print(f"--- last lines of {self.log}:", file=sys.stderr)
        sys.stderr.write("".join(tail))

    def dsn(self, dbname="postgres"):
        """Return a libpq connection string for this cluster."""
        return (f"host={self.directory} port={self.port} user=postgres "
                f"dbname={dbname}")


def child_pids(parent):
    """Return the ids of the live processes whose parent is parent."""
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces, so the
        # fields after it are counted from the closing parenthesis.
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == parent:
            children.append(int(entry))
    return children


def wait_for_exit(pids, timeout=60.0):
    """Wait until none of the processes exists, reaping those that are
    children of this process; raise on timeout."""
    deadline = time.monotonic() + timeout
    for pid in pids:
        while True:
            try:
                reaped, _ = os.waitpid(pid, os.WNOHANG)
                if reaped == pid:
                    break
            except ChildProcessError:
                if not os.path.exists(f"/proc/{pid}"):
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"process {pid} did not exit after SIGKILL")
            time.sleep(0.01)


def server_dsn_from_environment():
    """Return a connection string for the server that PGHOST and PGPORT name,
    or None when they are not set."""
    if os.environ.get("PGHOST") and os.environ.get("PGPORT"):
        user = os.environ.get("PGUSER", "postgres")
        return (f"host={os.environ['PGHOST']} port={os.environ['PGPORT']} "
                f"user={user}")
    return None


def connect(dsn, dbname=None, autocommit=True):
    """Open a connection; dbname, when given, overrides the one in dsn."""
    if dbname is not None:
        dsn = f"{dsn} dbname={dbname}"
    connection = psycopg2.connect(dsn)
    connection.autocommit = autocommit
    return connection


def create_database(dsn, dbname):
    """Create a fresh database with the haematite extension in it."""
    admin = connect(dsn, "postgres")
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{dbname}"')
            cursor.execute(f'CREATE DATABASE "{dbname}"')
    finally:
        admin.close()
    connection = connect(dsn, dbname)
    try:
        with connection.cursor() as cursor:
            cursor.execute("CREATE EXTENSION haematite")
    finally:
        connection.close()


def drop_database(dsn, dbname):
    """Drop a database, disconnecting any session still in it."""
    admin = connect(dsn, "postgres")
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    finally:
        admin.close()


class Checks:
    """Counts checks and prints each failure as it happens."""

    def __init__(self, suite):
        self.suite = suite
        self.passed = 0
        self.failed = 0

    def check(self, condition, description):
        """Record one check; print description when condition is false."""
        if condition:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAILED: {description}", flush=True)
        return condition

    def equal(self, actual, expected, description):
        """Record a check that actual equals expected."""
        return self.check(actual == expected,
                          f"{description}: expected {expected!r}, "
                          f"got {actual!r}")

    def summary(self):
        """Print the summary line and return the exit status."""
        print(f"{self.suite}: {self.passed} checks passed, "
              f"{self.failed} failed", flush=True)
        return 0 if self.failed == 0 else 1
