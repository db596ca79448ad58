"""The SLURM profile (profiles/slurm/) with snakemake-executor-plugin-slurm.

* The sbatch line the plugin builds for a training job, captured by a stand-in `sbatch` on
  PATH (runs everywhere): CPUs, memory, time limit, partition and account; no GPU request
  with `device: cpu`, exactly one with `cuda` or `auto`, a GPU type with `gpu_model`.
* A real single-node SLURM cluster on this machine (marked `slurm`): munged, MariaDB,
  slurmdbd, slurmctld and slurmd from Debian's packages, a generated slurm.conf for this
  host with its real CPU count and memory, every file in a temporary directory and every
  daemon on its own port. The smallest DAG runs through `--workflow-profile profiles/slurm`;
  one training job is cancelled with scancel mid-run and another is killed at its time
  limit; both must be retried by the profile and resume from their checkpoints, the jobs
  must be in `sacct` with the requested CPUs, memory, time limit, partition and account,
  and the tables must be byte-identical to a local run of the same config. The node has one
  stand-in GPU: a job with `device: cuda` must be allocated exactly one. It needs root
  (slurmd runs the jobs) and the packages (.ci/run installs them when it runs as root);
  elsewhere it skips, saying what is missing.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from dag_configs import tiny_dag_config

from analysis.tables import TABLE_FILES

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "profiles" / "slurm"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
PAPER = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def snakemake_env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **extra}


def output(proc) -> str:
    return proc.stdout + proc.stderr


# ---------------------------------------------------------------------- the sbatch line
# A stand-in for SLURM's client commands: `sbatch` records its arguments and fails (so
# Snakemake stops after the submission), the others answer as an empty cluster would.
FAKE_SBATCH = """\
#!{python}
import json, os, sys
with open(os.environ["FAKE_SBATCH_LOG"], "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
print("sbatch: error: stand-in sbatch of tests/test_slurm.py", file=sys.stderr)
sys.exit(1)
"""


@pytest.fixture
def fake_slurm(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(FAKE_SBATCH.format(python=sys.executable))
    for tool in ("sinfo", "squeue", "sacct", "sacctmgr", "sshare", "scontrol", "scancel"):
        (bin_dir / tool).write_text("#!/bin/sh\nexit 0\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    log = tmp_path / "sbatch.jsonl"

    def submit(*args: str, target="results/runs/paper/MT10-v1/toppo/seed0/eval.csv"):
        """The sbatch arguments of the one training job of `target`."""
        env = snakemake_env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                            FAKE_SBATCH_LOG=str(log))
        env.pop("SLURM_CONF", None)
        log.unlink(missing_ok=True)
        proc = subprocess.run([*SNAKEMAKE, "--directory", str(tmp_path), target,
                               "--workflow-profile", str(PROFILE), "--retries", "0",
                               "--slurm-init-seconds-before-status-checks", "1", *args],
                              capture_output=True, text=True, timeout=300, env=env)
        assert proc.returncode != 0 and "stand-in sbatch" in output(proc), output(proc)[-3000:]
        calls = [json.loads(line) for line in log.read_text().splitlines()]
        assert len(calls) == 1, calls
        return calls[0]

    return submit


def option(argv: list[str], name: str) -> str | None:
    """The value of `name` in sbatch's argv (`--name=value` or `--name value`), or None."""
    for i, arg in enumerate(argv):
        if arg == name:
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


MT10 = PAPER["resources"]["MT10"]


def test_profile_sets_the_executor_and_retries():
    prof = yaml.safe_load((PROFILE / "config.yaml").read_text())
    assert prof["executor"] == "slurm" and prof["retries"] >= 1
    assert "resources" not in prof  # no local gpu limit: SLURM schedules the GPUs
    # squeue, not sacct: the plugin (2.8.0) reads sacct's "CANCELLED by <uid>" as still
    # running. It uses squeue only when MinJobAge >= 3 x the first check delay; above the
    # plugin's longest interval between checks (180 s), no finished job drops out unseen.
    assert prof["slurm-status-command"] == "squeue"
    assert 3 * prof["slurm-init-seconds-before-status-checks"] > 180


# device cuda in the slow tier: the quick tier's GPU request with cuda is the one below (a
# Snakemake process each)
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.slow), "auto"])
def test_sbatch_line_of_a_training_job(fake_slurm, device):
    argv = fake_slurm("--config", f"device={device}")
    assert option(argv, "--cpus-per-task") == str(MT10["threads"])
    assert option(argv, "--mem") == str(MT10["mem_mb"])
    assert option(argv, "-t") == str(MT10["runtime"])
    assert option(argv, "-p") == "gpu"  # the profile's default partition
    assert option(argv, "--comment") == "rule_train_wildcards_MT10_v1_toppo_0"
    gpus = [a for a in argv if a.startswith("--gpus") or a.startswith("--gres")]
    if device == "cpu":
        assert gpus == [] and option(argv, "--ntasks") == "1"
    else:
        assert gpus == ["--gpus=1"]


def test_sbatch_line_with_partition_account_and_gpu_type(fake_slurm):
    argv = fake_slurm("--default-resources", "slurm_partition=a100q", "slurm_account=proj42",
                      "--set-resources", "train:gpu_model=a100", "--config", "device=cuda")
    assert option(argv, "-p") == "a100q" and option(argv, "-A") == "proj42"
    assert [a for a in argv if a.startswith("--gpus")] == ["--gpus=a100:1"]
    assert option(argv, "--mem") == str(MT10["mem_mb"])


# ---------------------------------------------------------------------- a real cluster
TOOLS = {  # command: Debian package
    "munged": "munge", "mungekey": "munge",
    "slurmctld": "slurm-wlm", "slurmd": "slurm-wlm", "sbatch": "slurm-wlm",
    "sacct": "slurm-wlm", "sacctmgr": "slurm-wlm", "scancel": "slurm-wlm",
    "scontrol": "slurm-wlm", "srun": "slurm-wlm", "slurmdbd": "slurmdbd",
    "mariadbd": "mariadb-server-core", "mariadb-install-db": "mariadb-server-core",
    "my_print_defaults": "mariadb-client-core",
}


# The daemons are in /usr/sbin, which a non-login shell's PATH may lack.
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def cluster_unavailable() -> str | None:
    """Why a SLURM cluster cannot be brought up here, or None."""
    if sys.platform != "linux":
        return "needs Linux"
    if os.geteuid() != 0:
        return "needs root (slurmd runs the jobs; the daemons run as root)"
    missing = sorted({pkg for tool, pkg in TOOLS.items()
                      if shutil.which(tool, path=SEARCH_PATH) is None})
    if missing:
        return (f"missing Debian packages: {' '.join(missing)} (apt-get install "
                f"--no-install-recommends {' '.join(missing)}; .ci/run does this as root)")
    return None


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def wait_for(what: str, check, timeout: float, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Cluster:
    """munged, MariaDB, slurmdbd, slurmctld and slurmd, all state under `root`."""

    name = "toppotest"
    account = "toppo"
    partition = "debug"

    def __init__(self, root: Path):
        self.root = root
        self.conf = root / "etc" / "slurm.conf"
        self.host = socket.gethostname().split(".")[0]
        self.cpus = os.cpu_count() or 1
        mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())[1])
        self.mem_mb = mem_kb // 1024 - 512  # slurmd drains a node that has less than this
        self.daemons: list[tuple[str, subprocess.Popen]] = []
        self.env = {**os.environ, "SLURM_CONF": str(self.conf), "PATH": SEARCH_PATH}
        self.bin = root / "bin"

    def client_env(self) -> dict[str, str]:
        """The environment of a Snakemake that submits to this cluster.

        SLURM_CONF names the generated slurm.conf. Inside a job, the jobstep plugin (0.6.1)
        starts the rule with `srun` in an environment stripped of every SLURM_* variable but
        the job's identity, SLURM_CONF included; a real node finds its slurm.conf at the
        standard path or from slurmctld (configless), this one cannot, so an `srun` first on
        PATH puts SLURM_CONF back (docs/slurm.md).
        """
        return snakemake_env(SLURM_CONF=str(self.conf), PATH=f"{self.bin}{os.pathsep}{SEARCH_PATH}")

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=self.env, timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)}: {output(proc)}\n{self.logs()}")
        return proc

    def daemon(self, name: str, *cmd: str) -> None:
        out = open(self.root / "log" / f"{name}.out", "w")
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                start_new_session=True)
        self.daemons.append((name, proc))

    def check_alive(self) -> None:
        for name, proc in self.daemons:
            assert proc.poll() is None, f"{name} exited with {proc.returncode}\n{self.logs()}"

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n" + p.read_text(errors="replace")[-2000:]
                         for p in sorted((self.root / "log").iterdir()))

    def start(self) -> None:
        r = self.root
        for d in ("etc", "log", "munge", "db", "state", "spool", "bin"):
            (r / d).mkdir()
        srun = self.bin / "srun"
        real_srun = shutil.which("srun", path=SEARCH_PATH)
        srun.write_text(f'#!/bin/sh\nSLURM_CONF={self.conf} exec {real_srun} "$@"\n')
        srun.chmod(0o755)
        (r / "munge").chmod(0o755)
        mysql_port, dbd_port, ctld_port, slurmd_port = free_ports(4)
        sock = r / "munge" / "munge.socket"

        key = r / "munge" / "munge.key"
        subprocess.run(["mungekey", "--create", f"--keyfile={key}"], check=True, env=self.env)
        key.chmod(0o600)
        self.daemon("munged", "munged", "--foreground", "--force", f"--socket={sock}", f"--key-file={key}",
                    f"--pid-file={r / 'munge' / 'munged.pid'}", f"--seed-file={r / 'munge' / 'seed'}",
                    f"--log-file={r / 'log' / 'munged.log'}")

        subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={r / 'db'}",
                        "--user=root", "--auth-root-authentication-method=normal",
                        "--skip-test-db"], check=True, capture_output=True, timeout=120,
                       env=self.env)
        self.daemon("mariadbd", "mariadbd", "--no-defaults", f"--datadir={r / 'db'}", "--user=root",
                    f"--socket={r / 'db' / 'mysqld.sock'}", f"--port={mysql_port}",
                    "--bind-address=127.0.0.1", "--skip-name-resolve",
                    f"--pid-file={r / 'db' / 'mysqld.pid'}", f"--log-error={r / 'log' / 'mariadb.log'}",
                    "--innodb-buffer-pool-size=64M", "--innodb-log-file-size=8M",
                    "--innodb-lock-wait-timeout=900")

        (r / "etc" / "slurmdbd.conf").write_text(textwrap.dedent(f"""\
            AuthType=auth/munge
            AuthInfo=socket={sock}
            DbdHost=localhost
            DbdAddr=127.0.0.1
            DbdPort={dbd_port}
            SlurmUser=root
            PidFile={r / 'slurmdbd.pid'}
            LogFile={r / 'log' / 'slurmdbd.log'}
            StorageType=accounting_storage/mysql
            StorageHost=127.0.0.1
            StoragePort={mysql_port}
            StorageUser=root
            StorageLoc=slurm_acct_db
            """))
        (r / "etc" / "slurmdbd.conf").chmod(0o600)  # slurmdbd refuses a readable one
        self.conf.write_text(textwrap.dedent(f"""\
            ClusterName={self.name}
            SlurmctldHost={self.host}(127.0.0.1)
            SlurmctldPort={ctld_port}
            SlurmdPort={slurmd_port}
            AuthType=auth/munge
            AuthInfo=socket={sock}
            CredType=cred/munge
            SlurmUser=root
            SlurmdUser=root
            StateSaveLocation={r / 'state'}
            SlurmdSpoolDir={r / 'spool'}
            SlurmctldPidFile={r / 'slurmctld.pid'}
            SlurmdPidFile={r / 'slurmd.pid'}
            SlurmctldLogFile={r / 'log' / 'slurmctld.log'}
            SlurmdLogFile={r / 'log' / 'slurmd.log'}
            ProctrackType=proctrack/linuxproc
            TaskPlugin=task/none
            SelectType=select/cons_tres
            SelectTypeParameters=CR_Core_Memory
            SlurmdParameters=config_overrides
            MpiDefault=none
            ReturnToService=2
            KillWait=30
            MinJobAge=300
            JobAcctGatherType=jobacct_gather/linux
            AccountingStorageType=accounting_storage/slurmdbd
            AccountingStorageHost=127.0.0.1
            AccountingStoragePort={dbd_port}
            AccountingStoragePass={sock}
            AccountingStorageEnforce=associations
            AccountingStoreFlags=job_comment
            GresTypes=gpu
            AccountingStorageTRES=gres/gpu
            NodeName={self.host} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.mem_mb} Gres=gpu:1 State=UNKNOWN
            PartitionName={self.partition} Nodes=ALL Default=YES MaxTime=INFINITE State=UP
            """))

        # One GPU that is not there (/dev/null): SLURM allocates it like a real one.
        (r / "etc" / "gres.conf").write_text(f"NodeName={self.host} Name=gpu File=/dev/null\n")
        wait_for("MariaDB", lambda: self.check_alive() or port_open(mysql_port), 60)
        self.daemon("slurmdbd", "slurmdbd", "-D")
        wait_for("slurmdbd", lambda: self.check_alive() or self.run(
            "sacctmgr", "-n", "list", "cluster", check=False).returncode == 0, 60, 0.5)
        self.run("sacctmgr", "-i", "add", "cluster", self.name)
        self.run("sacctmgr", "-i", "add", "account", self.account, "Description=test",
                 "Organization=test")
        self.run("sacctmgr", "-i", "add", "user", "root", f"Account={self.account}")
        self.daemon("slurmctld", "slurmctld", "-D")
        self.daemon("slurmd", "slurmd", "-D")
        wait_for("an idle node", lambda: self.check_alive() or self.run(
            "sinfo", "-h", "-o", "%t", check=False).stdout.strip() == "idle", 60, 0.5)

    def stop(self) -> None:
        if any(name == "slurmctld" for name, _ in self.daemons):
            self.run("scancel", f"--partition={self.partition}", check=False)
            try:
                wait_for("the queue to empty", lambda: self.run(
                    "squeue", "-h", check=False).stdout.strip() == "", 60, 0.5)
            except AssertionError:
                pass
        for _, proc in reversed(self.daemons):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        # Anything a job left behind (slurmstepd is a daemon of its own) carries our SLURM_CONF.
        for pid in processes_with_env(f"SLURM_CONF={self.conf}"):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.root / "db", ignore_errors=True)  # MariaDB's files; logs stay


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def processes_with_env(entry: str) -> list[int]:
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit() and int(p.name) != os.getpid():
            try:
                if entry.encode() in (p / "environ").read_bytes().split(b"\0"):
                    pids.append(int(p.name))
            except OSError:
                pass
    return pids


def trainer_pids(workdir: Path, cell: str) -> set[int]:
    """PIDs of `python -m toppo.train` processes of `cell` running in `workdir`."""
    pids = set()
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            argv = (p / "cmdline").read_bytes().decode(errors="replace").split("\0")
            if "toppo.train" in argv and any(cell in a for a in argv) and \
                    Path(os.readlink(p / "cwd")) == workdir:
                pids.add(int(p.name))
        except OSError:
            pass
    return pids


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    reason = cluster_unavailable()
    if reason:
        pytest.skip(f"no SLURM cluster can be brought up here: {reason}")
    cluster = Cluster(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


# Two cells of 4 updates (5,000 env steps each, a checkpoint after every update), evaluated
# twice; tiny networks. Memory and time limit are distinctive so sacct shows they were used.
# Episodes of 100 steps keep the evaluations short; an update still takes seconds, so the
# test acts on a job between its first checkpoint and its last.
CELL_CONFIG = tiny_dag_config("slurmtest", rollout_steps_per_task=500, num_minibatches=2,
                              mem_mb=1500, runtime=20, max_episode_steps=100)
RUNS = "results/runs/slurmtest/MT10-v1"
REPORT = "results/slurmtest"  # a non-paper scale writes its report under results/{scale}/


def sacct_jobs(cluster: Cluster, workdir: Path) -> list[dict[str, str]]:
    """The training jobs that a Snakemake in `workdir` submitted, as sacct records them."""
    fields = ["JobID", "Comment", "State", "ReqCPUS", "ReqMem", "Timelimit", "Partition",
              "Account", "AllocTRES", "WorkDir"]
    out = cluster.run("sacct", "-X", "-P", "-n", "--allusers", "--starttime", "now-1hour",
                      "-o", ",".join(fields)).stdout
    jobs = [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line]
    return [j for j in jobs if j["WorkDir"] == str(workdir) and
            j["Comment"].startswith("rule_train_")]


def running_job(cluster: Cluster, variant: str) -> str | None:
    """The SLURM id of the running training job of `variant`, or None."""
    out = cluster.run("squeue", "-h", "-t", "RUNNING", "-o", "%i|%k").stdout
    for line in out.splitlines():
        jobid, comment = line.split("|", 1)
        if comment == f"rule_train_wildcards_MT10_v1_{variant}_0":
            return jobid
    return None


def checkpoint_update(run: Path) -> int:
    """The update index of the cell's latest checkpoint (0 when there is none)."""
    ckpt = run / "checkpoints" / "latest.pt"
    if not ckpt.exists():
        return 0
    import torch

    try:
        return torch.load(ckpt, map_location="cpu", weights_only=False)["update_idx"]
    except Exception:  # being replaced at this moment
        return 0


@pytest.mark.slurm
@pytest.mark.slow
def test_smallest_dag_on_a_real_slurm_cluster(slurm_cluster, tmp_path):
    cluster = slurm_cluster
    cfg = tmp_path / "cells.yaml"
    cfg.write_text(textwrap.dedent(CELL_CONFIG))
    num_updates = 20000 // (10 * 500)

    # The local run of the same config, the reference for the tables, runs alongside.
    local, work = tmp_path / "local", tmp_path / "slurm"
    local.mkdir()
    work.mkdir()
    local_log = open(tmp_path / "snakemake-local.log", "w")
    local_smk = subprocess.Popen([*SNAKEMAKE, "--directory", str(local), f"{REPORT}/table3.tex",
                                  "--cores", "2", "--configfile", str(cfg)],
                                 stdout=local_log, stderr=subprocess.STDOUT, env=snakemake_env())
    log = open(tmp_path / "snakemake-slurm.log", "w")
    smk = subprocess.Popen(
        [*SNAKEMAKE, "--directory", str(work), f"{REPORT}/table3.tex",
         "--workflow-profile", str(PROFILE), "--configfile", str(cfg),
         "--default-resources", f"slurm_partition={cluster.partition}",
         f"slurm_account={cluster.account}",
         "--slurm-init-seconds-before-status-checks", "2", "--seconds-between-status-checks", "2"],
        stdout=log, stderr=subprocess.STDOUT, env=cluster.client_env())
    try:
        # As soon as a cell's job has written a checkpoint: toppo's is cancelled with scancel;
        # mtppo's trainer is stopped (SIGSTOP, so it cannot finish first) and its job's time
        # limit lowered to 1 minute, so slurmctld kills it at its limit (TIMEOUT).
        pending, cancelled = {"toppo": "scancel", "mtppo": "timelimit"}, {}

        def act_on_checkpoints():
            assert smk.poll() is None, (tmp_path / "snakemake-slurm.log").read_text()[-5000:]
            for variant in list(pending):
                jobid = checkpoint_update(work / RUNS / variant / "seed0") >= 1 and \
                    running_job(cluster, variant)
                if not jobid:
                    continue
                pids = trainer_pids(work, f"{variant}/seed0")
                assert pids, f"no trainer of {variant} is running"
                if pending.pop(variant) == "scancel":
                    cluster.run("scancel", jobid)
                else:
                    for pid in pids:
                        os.kill(pid, signal.SIGSTOP)
                    cluster.run("scontrol", "update", f"JobId={jobid}", "TimeLimit=1")
                cancelled[variant] = (jobid, pids)
            return not pending

        wait_for("both jobs to write a checkpoint", act_on_checkpoints, 600, 0.2)
        # The cancelled trainer dies with its job, on the SIGTERM (SIGKILL would follow
        # KillWait=30 s later).
        wait_for("the cancelled trainer to exit", lambda: not any(
            Path(f"/proc/{p}").exists() for p in cancelled["toppo"][1]), 15, 0.2)
        rc = smk.wait(timeout=900)
        local_rc = local_smk.wait(timeout=900)
    finally:
        for proc in (smk, local_smk):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # Snakemake cancels its SLURM jobs
                proc.wait(timeout=60)
        log.close()
        local_log.close()
    text = (tmp_path / "snakemake-slurm.log").read_text()
    assert rc == 0, text[-5000:] + cluster.logs()
    assert local_rc == 0, (tmp_path / "snakemake-local.log").read_text()[-5000:]

    # sacct: every training attempt went through sbatch with the requested resources.
    jobs = sacct_jobs(cluster, work)
    states = sorted((j["Comment"].rsplit("_", 2)[1], j["State"].split()[0]) for j in jobs)
    assert states == [("mtppo", "COMPLETED"), ("mtppo", "TIMEOUT"),
                      ("toppo", "CANCELLED"), ("toppo", "COMPLETED")], jobs
    for j in jobs:
        limit = "00:01:00" if j["State"] == "TIMEOUT" else "00:20:00"
        assert (j["ReqCPUS"], j["ReqMem"], j["Timelimit"], j["Partition"], j["Account"]) == (
            "1", "1500M", limit, cluster.partition, cluster.account), j
        assert "gres/gpu" not in j["AllocTRES"], j  # device: cpu asks for no GPU
    # The profile's retries resubmitted both, and each retry resumed from the checkpoint its
    # interrupted attempt left.
    assert text.count("Trying to restart job") == 2, text[-5000:]
    for variant, status in (("toppo", "CANCELLED"), ("mtppo", "TIMEOUT")):
        jobid = cancelled[variant][0]
        assert f"SLURM-job '{jobid}' failed, SLURM status is: '{status}'" in text, text[-5000:]
        train_log = (work / RUNS / variant / "seed0" / "train.log").read_text()
        resumed = re.findall(r"resumed from \S+ at update (\d+)/", train_log)
        assert len(resumed) == 1 and 1 <= int(resumed[0]) < num_updates, train_log[-3000:]
        manifest = json.loads((work / RUNS / variant / "seed0" / "manifest.json").read_text())
        assert manifest["status"] == "complete" and manifest["updates"] == num_updates

    # The tables are those of the local run, byte for byte.
    for name in TABLE_FILES:
        ours = (work / REPORT / f"{name}.tex").read_bytes()
        assert ours == (local / REPORT / f"{name}.tex").read_bytes(), name


@pytest.mark.slurm
@pytest.mark.slow  # a workflow run on a real cluster (brought up for it)
def test_training_job_with_device_cuda_gets_exactly_one_gpu(slurm_cluster, tmp_path):
    """The cluster's node has one GPU (gres, /dev/null standing in for the device): with
    `device: cuda` the training job is allocated exactly one. Without CUDA the trainer then
    stops at once with its clear error; with it, the cell trains on the GPU."""
    import torch

    cluster = slurm_cluster
    cfg = tmp_path / "cells.yaml"
    cfg.write_text(textwrap.dedent(CELL_CONFIG))
    work = tmp_path / "gpu"
    work.mkdir()
    proc = subprocess.run(
        [*SNAKEMAKE, "--directory", str(work), f"{RUNS}/toppo/seed0/eval.csv",
         "--workflow-profile", str(PROFILE), "--configfile", str(cfg), "--config", "device=cuda",
         "--default-resources", f"slurm_partition={cluster.partition}",
         f"slurm_account={cluster.account}", "--retries", "0",
         "--slurm-init-seconds-before-status-checks", "2", "--seconds-between-status-checks", "2"],
        capture_output=True, text=True, timeout=600, env=cluster.client_env())
    jobs = sacct_jobs(cluster, work)
    assert len(jobs) == 1, (jobs, output(proc)[-3000:])
    tres = jobs[0]["AllocTRES"].split(",")
    assert "gres/gpu=1" in tres and "cpu=1" in tres and "mem=1500M" in tres, jobs
    train_log = (work / RUNS / "toppo" / "seed0" / "train.log").read_text()
    if torch.cuda.is_available():
        assert proc.returncode == 0 and jobs[0]["State"] == "COMPLETED", output(proc)[-3000:]
    else:
        assert proc.returncode != 0 and jobs[0]["State"] == "FAILED", output(proc)[-3000:]
        assert "cuda requested but torch sees no CUDA device" in train_log, train_log[-3000:]
