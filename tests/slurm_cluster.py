"""A real one-node Slurm with accounting for the tests: munged, mariadbd, slurmdbd, slurmctld
and slurmd from Debian's packages (slurm-wlm, slurmdbd, munge, mariadb-server).

Everything else lives under one temp folder (configs, state, logs) with free ports;
every daemon runs in the foreground as a child of the test process and is stopped by the PID it
was started with, never by name. Each runs in a process group that dies with the test process,
even a SIGKILLed one (tests/owned_process.py); slurmd's keeper first kills the processes of the
jobs, which slurmstepd runs in sessions of their own. Start order (slurmdbd reads
``slurmdbd.conf`` beside ``SLURM_CONF``, mode 0600): munged, mariadbd, slurmdbd, slurmctld,
``sacctmgr add cluster``, slurmd. It needs root (slurmd, and the daemons' ``SlurmUser=root``);
``skip_reason()`` says why it cannot start here.

Three paths are the machine's own: MariaDB's client library reaches the server through
``/run/mysqld/mysqld.sock`` whatever the host; munged listens on Slurm's default socket (a
munged already there is used); and slurmd runs configless, caching the config at
``/run/slurm/conf``, where the Slurm commands inside a job look for it (the executor's job step
drops ``SLURM_CONF``). So only one such cluster can run on a machine at a time.

Run ``python tests/slurm_cluster.py`` to start one by hand (Ctrl-C stops it);
``python tests/slurm_cluster.py kill-jobs ROOT`` kills what the jobs of the cluster in ROOT left.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from owned_process import OwnedProcess

DAEMONS = ("munged", "mariadbd", "mariadb-install-db", "slurmdbd", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "sacct", "squeue", "scontrol", "scancel", "sacctmgr", "sinfo")
SBIN = ("/usr/sbin", "/usr/bin")
MYSQL_SOCKET = Path("/run/mysqld/mysqld.sock")
# Slurm's default: a configless slurmd fetches its config before it could read another one.
MUNGE_SOCKET = Path("/run/munge/munge.socket.2")
CLUSTER = "slmbench"
PARTITION = "debug"
NODE_MEMORY_MB = 16000  # what the node advertises: a request above it can never run
KILL_WAIT_S = 5  # SIGTERM at the time limit, SIGKILL this long after
# sacct states of a job whose processes may still run.
LIVE_STATES = {"PENDING", "RUNNING", "REQUEUED", "SUSPENDED"}


def _which(name: str) -> str | None:
    return shutil.which(name, path=os.pathsep.join([*SBIN, os.environ.get("PATH", "")]))


def skip_reason() -> str | None:
    """Why a real Slurm cannot start here, or None."""
    missing = [name for name in (*DAEMONS, *CLIENTS) if _which(name) is None]
    if missing:
        return (
            f"Slurm is not installed ({', '.join(missing)} missing): "
            "apt-get install -y slurm-wlm slurmdbd munge mariadb-server"
        )
    if os.geteuid() != 0:
        return "a local Slurm with accounting needs root (slurmd, SlurmUser=root)"
    if not Path("/etc/munge/munge.key").exists():
        return "no /etc/munge/munge.key (the munge package creates it)"
    if MYSQL_SOCKET.exists() and _socket_in_use(MYSQL_SOCKET):
        return f"{MYSQL_SOCKET} is in use: another MariaDB (or test cluster) runs here"
    return None


def _socket_in_use(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(1)
        try:
            sock.connect(str(path))
        except OSError:
            return False
        return True


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except (OSError, UnicodeDecodeError):
        return ""


def _job_id(pid: int) -> str | None:
    """The Slurm job a process belongs to: SLURM_JOB_ID, or slurmstepd's ``[JOB.step]``."""
    try:
        for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
            if item.startswith(b"SLURM_JOB_ID="):
                return item.split(b"=", 1)[1].decode()
    except OSError:
        return None
    match = re.match(r"slurmstepd: \[(\d+)", _cmdline(pid))
    return match.group(1) if match else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(check, what: str, timeout_s: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise RuntimeError(f"slurm test cluster: {what} not up after {timeout_s:g} s\n{tail}")


class SlurmCluster:
    """One node (this host) and one partition; ``env`` is what the Slurm clients need."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.host = socket.gethostname().split(".")[0]
        # Two 2-session jobs at once: the node may claim more CPUs than the machine has.
        self.cpus = max(4, os.cpu_count() or 1)
        self.ports = {name: free_port() for name in ("ctld", "slurmd", "dbd", "mysql")}
        self.conf = self.root / "etc" / "slurm.conf"
        self.munge_socket = MUNGE_SOCKET
        self.processes: dict[str, OwnedProcess] = {}

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["SLURM_CONF"] = str(self.conf)
        env["PATH"] = os.pathsep.join([env.get("PATH", ""), *SBIN])
        return env

    def run(self, *argv: str, timeout_s: float = 30, check: bool = True) -> str:
        done = subprocess.run(
            argv, env=self.env, capture_output=True, text=True, timeout=timeout_s, check=False
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout

    def _spawn(
        self, name: str, argv: list[str], user: str | None = None, on_close: list[str] | None = None
    ) -> None:
        log = open(self.root / "log" / f"{name}.out", "wb")  # noqa: SIM115 - daemon lifetime
        preexec = None
        if user:
            import pwd

            entry = pwd.getpwnam(user)

            def preexec() -> None:
                os.setgid(entry.pw_gid)
                os.setuid(entry.pw_uid)

        self.processes[name] = OwnedProcess(
            argv, self.root, on_close, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=preexec,
        )  # fmt: skip
        log.close()

    def _alive(self, name: str) -> bool:
        process = self.processes[name].process
        if process.poll() is not None:
            log = self.root / "log" / f"{name}.out"
            raise RuntimeError(
                f"slurm test cluster: {name} exited with {process.returncode}\n"
                + (log.read_text(errors="replace")[-2000:] if log.exists() else "")
            )
        return True

    def _write_configs(self) -> None:
        r = self.root
        for sub in ("etc", "log", "state", "spool", "db", "munge", "run"):
            (r / sub).mkdir(parents=True, exist_ok=True)
        common = "AuthType=auth/munge\n"
        self.conf.write_text(
            f"ClusterName={CLUSTER}\nSlurmctldHost={self.host}(127.0.0.1)\n{common}"
            f"SlurmctldPort={self.ports['ctld']}\nSlurmdPort={self.ports['slurmd']}\n"
            "SlurmUser=root\nSlurmdUser=root\n"
            f"StateSaveLocation={r}/state\nSlurmdSpoolDir={r}/spool\n"
            f"SlurmctldPidFile={r}/run/slurmctld.pid\nSlurmdPidFile={r}/run/slurmd.pid\n"
            f"SlurmctldLogFile={r}/log/slurmctld.log\nSlurmdLogFile={r}/log/slurmd.log\n"
            "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nMpiDefault=none\n"
            "SelectType=select/cons_tres\nSelectTypeParameters=CR_Core_Memory\nDefMemPerCPU=500\n"
            "ReturnToService=2\nSchedulerType=sched/backfill\nSlurmdParameters=config_overrides\n"
            # configless: slurmd caches the config and links it at /run/slurm/conf, where the
            # Slurm commands inside a job find it (the executor's job step drops SLURM_CONF)
            "SlurmctldParameters=enable_configless\n"
            f"KillWait={KILL_WAIT_S}\nMinJobAge=300\nInactiveLimit=0\nMessageTimeout=10\n"
            "AccountingStorageType=accounting_storage/slurmdbd\n"
            f"AccountingStorageHost=localhost\nAccountingStoragePort={self.ports['dbd']}\n"
            "MailProg=/bin/true\n"
            "JobAcctGatherType=jobacct_gather/none\nJobCompType=jobcomp/none\n"
            f"NodeName={self.host} NodeAddr=127.0.0.1 CPUs={self.cpus} "
            f"RealMemory={NODE_MEMORY_MB} State=UNKNOWN\n"
            f"PartitionName={PARTITION} Nodes={self.host} Default=YES MaxTime=INFINITE State=UP\n"
        )
        dbd = self.conf.with_name("slurmdbd.conf")
        dbd.write_text(
            f"{common}DbdHost=localhost\nDbdPort={self.ports['dbd']}\nSlurmUser=root\n"
            f"LogFile={r}/log/slurmdbd.log\nPidFile={r}/run/slurmdbd.pid\n"
            "StorageType=accounting_storage/mysql\nStorageHost=127.0.0.1\n"
            f"StoragePort={self.ports['mysql']}\nStorageLoc=slurm_acct_db\n"
            "StorageUser=slurm\nStoragePass=slurm\n"
        )
        dbd.chmod(0o600)

    def _start_munge(self) -> None:
        """munged on Slurm's default socket; one that already answers there is used as is."""
        import pwd

        if _socket_in_use(self.munge_socket):
            return
        munge = pwd.getpwnam("munge")
        self.munge_socket.parent.mkdir(parents=True, exist_ok=True)
        os.chown(self.munge_socket.parent, munge.pw_uid, munge.pw_gid)
        self.munge_socket.parent.chmod(0o755)
        d = self.munge_socket.parent  # the munge user cannot reach a private temp folder
        self._spawn(
            "munged",
            ["munged", "-F", f"--socket={self.munge_socket}", f"--pid-file={d}/munged.pid",
             f"--log-file={d}/munged.log", f"--seed-file={d}/munged.seed"],
            user="munge",
        )  # fmt: skip
        _wait(lambda: self._alive("munged") and self.munge_socket.exists(), "munged", 20)

    def _start_mariadb(self) -> None:
        db = self.root / "db"
        if not (db / "mysql").exists():  # a restart keeps the accounting database
            subprocess.run(
                ["mariadb-install-db", "--no-defaults", f"--datadir={db}", "--user=root",
                 "--auth-root-authentication-method=normal", "--skip-test-db"],
                check=True, capture_output=True, env=self.env, timeout=120,
            )  # fmt: skip
        MYSQL_SOCKET.parent.mkdir(parents=True, exist_ok=True)
        self._spawn(
            "mariadbd",
            ["mariadbd", "--no-defaults", f"--datadir={db}", f"--socket={MYSQL_SOCKET}",
             f"--port={self.ports['mysql']}", "--bind-address=127.0.0.1", "--user=root",
             f"--pid-file={self.root}/run/mariadbd.pid", "--skip-log-error"],
        )  # fmt: skip
        _wait(lambda: self._alive("mariadbd") and _socket_in_use(MYSQL_SOCKET), "mariadbd", 60)
        sql = (
            "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';"
            "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';"
            "CREATE DATABASE IF NOT EXISTS slurm_acct_db;"
            "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
            "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
        )
        subprocess.run(
            ["mariadb", "--no-defaults", f"--socket={MYSQL_SOCKET}", "-uroot", "-e", sql],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip

    def start(self) -> SlurmCluster:
        reason = skip_reason()
        if reason:
            raise RuntimeError(reason)
        started = time.monotonic()
        self._write_configs()
        try:
            self._start_munge()
            self._start_mariadb()
            self._spawn("slurmdbd", ["slurmdbd", "-D"])
            _wait(lambda: self._alive("slurmdbd") and self._port_open("dbd"), "slurmdbd", 60,
                  self.root / "log" / "slurmdbd.log")  # fmt: skip
            self._spawn("slurmctld", ["slurmctld", "-D", "-f", str(self.conf)])
            _wait(lambda: self._alive("slurmctld") and self._port_open("ctld"), "slurmctld", 60,
                  self.root / "log" / "slurmctld.log")  # fmt: skip
            self.run("sacctmgr", "-i", "add", "cluster", CLUSTER, check=False)
            # slurmstepd leaves slurmd's group (a double fork and a session of its own), so
            # slurmd's keeper first kills the jobs' processes as stop() does.
            self._spawn(
                "slurmd", ["slurmd", "-D", "--conf-server", f"127.0.0.1:{self.ports['ctld']}"],
                on_close=[sys.executable, __file__, "kill-jobs", str(self.root)],
            )  # fmt: skip
            _wait(self._node_idle, "slurmd (node idle)", 60, self.root / "log" / "slurmd.log")
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.monotonic() - started
        return self

    def _port_open(self, name: str) -> bool:
        with socket.socket() as sock:
            sock.settimeout(1)
            return sock.connect_ex(("127.0.0.1", self.ports[name])) == 0

    def _node_idle(self) -> bool:
        self._alive("slurmd")
        out = self.run("sinfo", "-h", "-N", "-o", "%T", check=False, timeout_s=10)
        return out.strip().startswith("idle")

    def stop_daemon(self, name: str, timeout_s: float = 20) -> None:
        """Stop one daemon by its PID: SIGTERM, then SIGKILL to what is left of its group."""
        owned = self.processes.pop(name, None)
        if owned is not None:
            owned.stop(signal.SIGTERM, timeout_s)

    def stop(self) -> None:
        """Cancel every job, then stop every daemon in the reverse of the start order, each by
        its PID, then kill what the jobs left: slurmstepd outlives slurmd, and a job's
        processes (a training in a session of its own) would go on for hours unwatched. The
        cluster can be started again."""
        try:
            self.cancel_all_jobs()
        finally:
            for name in ("slurmd", "slurmctld", "slurmdbd", "mariadbd", "munged"):
                self.stop_daemon(name)
            self.kill_job_processes()

    def cancel_all_jobs(self, timeout_s: float = KILL_WAIT_S + 20) -> None:
        """scancel every job and wait until none is left in squeue (best effort: a controller
        that no longer answers leaves it to kill_job_processes)."""
        ctld = self.processes.get("slurmctld")
        if ctld is None or ctld.process.poll() is not None:
            return
        try:
            jobs = self.run("squeue", "-h", "-o", "%A", check=False, timeout_s=10).split()
            if jobs:
                self.run("scancel", *jobs, check=False, timeout_s=10)
            deadline = time.monotonic() + timeout_s
            while jobs and time.monotonic() < deadline:
                time.sleep(0.5)
                jobs = self.run("squeue", "-h", "-o", "%A", check=False, timeout_s=10).split()
        except subprocess.TimeoutExpired:
            pass

    def job_processes(self) -> dict[int, str]:
        """pid -> command line of every live process started for this cluster's jobs: each
        slurmstepd and job process has SLURM_CONF in this cluster's spool (slurmd's config
        cache), and their descendants may have dropped it."""
        marker = f"SLURM_CONF={self.root / 'spool'}/".encode()
        daemons = {owned.process.pid for owned in self.processes.values()}
        parents: dict[int, int] = {}
        found: dict[int, str] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
                parents[pid] = int(stat.rsplit(")", 1)[1].split()[1])
                environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            except (OSError, IndexError, ValueError):
                continue  # gone, or a kernel thread
            if pid not in daemons and any(item.startswith(marker) for item in environ):
                found[pid] = command.decode(errors="replace").strip()
        for pid in sorted(parents):  # descendants of a found process, whatever their env
            ancestor, seen = parents.get(pid, 0), 0
            while ancestor > 1 and ancestor not in found and seen < 64:
                ancestor, seen = parents.get(ancestor, 0), seen + 1
            if ancestor in found and pid not in found:
                found[pid] = _cmdline(pid)
        found.pop(os.getpid(), None)
        return found

    def reap_finished_jobs(self) -> list[int]:
        """SIGKILL the processes of jobs that Slurm has ended (cancelled, timed out, done) and
        return their PIDs. A cluster that tracks jobs in cgroups kills them with the job; this
        one (proctrack/linuxproc, no cgroups in a container) was seen to leave a cancelled or
        timed-out job's training running, taking the CPUs from every later test."""
        jobs: dict[int, str] = {}
        for pid in self.job_processes():
            job = _job_id(pid)
            if job:
                jobs[pid] = job
        ended = set()
        for job in set(jobs.values()):
            state = self.run("sacct", "-X", "-n", "-P", "-j", job, "-o", "State", check=False)
            if state.strip() and state.split()[0] not in LIVE_STATES:
                ended.add(job)
        reaped = [pid for pid, job in jobs.items() if job in ended]
        for pid in reaped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return reaped

    def kill_job_processes(self, timeout_s: float = 10) -> None:
        """SIGKILL every process of this cluster's jobs until none is left."""
        deadline = time.monotonic() + timeout_s
        while (left := self.job_processes()) and time.monotonic() < deadline:
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
        if left:
            raise RuntimeError(f"slurm test cluster: job processes survive SIGKILL: {left}")

    def wait_for_state(self, job_id: str, states: set[str], timeout_s: float = 120) -> str:
        """Wait until ``sacct`` reports the job in one of ``states``; return that state."""
        found = ""

        def reached() -> bool:
            nonlocal found
            out = self.run("sacct", "-X", "-n", "-P", "-j", job_id, "-o", "State", check=False)
            found = out.strip().split("\n")[0].split(" ")[0] if out.strip() else ""
            return found in states

        _wait(reached, f"job {job_id} in {sorted(states)} (last {found!r})", timeout_s)
        return found


if __name__ == "__main__" and sys.argv[1:2] == ["kill-jobs"]:
    SlurmCluster(Path(sys.argv[2])).kill_job_processes()
elif __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory(prefix="slurm-") as tmp:
        cluster = SlurmCluster(Path(tmp)).start()
        print(f"up in {cluster.startup_s:.1f} s: export SLURM_CONF={cluster.conf}", flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
        finally:
            cluster.stop()
