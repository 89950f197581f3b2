#!/usr/bin/env python3
"""Slurm tests of `sdm submit` on a real single-node Slurm (reference/toolchain.md recipe).

  check_slurm.py SDM WORKDIR start    start munged, slurmctld and slurmd unless a Slurm already answers
  check_slurm.py SDM WORKDIR stop     stop the daemons `start` started
  check_slurm.py SDM WORKDIR submit   `sdm submit` a small sweep, wait, check the store
  check_slurm.py SDM WORKDIR drain    submit a slower sweep, send the pre-timeout signal
                                      (`scancel --batch --signal=USR1`) mid-sweep; the job drains, requeues itself and
                                      the requeued run finishes with every cell exactly once

When Slurm cannot start (no slurm-wlm, not root, daemons fail), a test exits 77 (ctest shows it as skipped) and
says why; under CI=true that is a failure unless SDM_ALLOW_SLURM_SKIP=1 (CONTRACTS §10). Each test is capped at
about 5 minutes.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time

import h5py

SDM, WORK, MODE = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]), sys.argv[3]
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
STATE = "/tmp/sdm-slurm-test.json"  # pids of the daemons this test started
CAP_S = 290


def skip(why):
    if os.environ.get("CI") == "true" and os.environ.get("SDM_ALLOW_SLURM_SKIP") != "1":
        print(f"FAIL: Slurm cannot start under CI=true: {why} (set SDM_ALLOW_SLURM_SKIP=1 to allow skipping)")
        sys.exit(1)
    print(f"SKIP: {why}")
    sys.exit(77)


DIAGNOSE = []  # what a failure prints: the job's log (tail) and the store's failed cells with their errors


def expect(ok, what):
    print(("ok: " if ok else "FAIL: ") + what, flush=True)
    if not ok:
        for path in DIAGNOSE:
            if not os.path.exists(path):
                continue
            if path.endswith(".h5"):
                try:
                    with h5py.File(path, "r") as f:
                        g = f["cells"]
                        text = lambda v: v.decode() if isinstance(v, bytes) else str(v)
                        for cid, st, err in zip(g["cell_id"][()], g["status"][()], g["error"][()]):
                            if text(st) != "done":
                                print(f"--- cell {text(cid)}: {text(st)}: {text(err)}")
                except (OSError, KeyError) as e:
                    print(f"--- {path}: unreadable ({e})")
            else:
                print(f"--- {path} (tail):\n{open(path, errors='replace').read()[-3000:]}")
        sys.exit(1)


def sh(cmd, check=True, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and p.returncode != 0:
        raise SystemExit(f"FAIL: {' '.join(cmd)} -> {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def slurm_answers():
    return shutil.which("sinfo") and subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True,
                                                     timeout=20).stdout.strip() in ("idle", "mixed", "allocated")


def start():
    if slurm_answers():
        print("a Slurm cluster already answers; using it")
        return
    if not shutil.which("slurmctld") or not shutil.which("munged"):
        skip("slurm-wlm is not installed (tools/install-deps.sh installs it)")
    if os.geteuid() != 0:
        skip("starting a local Slurm needs root")
    host = socket.gethostname().split(".")[0]
    cpus = os.cpu_count() or 1
    mem_mb = int(open("/proc/meminfo").read().split("MemTotal:")[1].split()[0]) // 1024 - 1024
    for d, owner in (("/run/munge", "munge"), ("/var/log/munge", "munge"), ("/var/lib/munge", "munge"),
                     ("/var/spool/slurmctld", "slurm"), ("/var/spool/slurmd", "root"), ("/var/log/slurm", "slurm")):
        os.makedirs(d, exist_ok=True)
        shutil.chown(d, owner, owner)
    conf = f"""ClusterName=sdmtest
SlurmctldHost={host}
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobRequeue=1
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldPidFile=/run/slurmctld-sdm.pid
SlurmdPidFile=/run/slurmd-sdm.pid
NodeName={host} CPUs={cpus} RealMemory={mem_mb} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
"""
    os.makedirs("/etc/slurm", exist_ok=True)
    with open("/etc/slurm/slurm.conf", "w") as f:
        f.write(conf)
    with open("/etc/slurm/cgroup.conf", "w") as f:
        f.write("CgroupPlugin=cgroup/v1\n")  # 'disabled' is not valid in 22.05
    if not os.path.exists("/etc/munge/munge.key"):
        skip("no /etc/munge/munge.key (the munge package creates it)")
    if subprocess.run(["pgrep", "-x", "munged"], capture_output=True).returncode != 0:
        r = subprocess.run(["su", "-s", "/bin/sh", "munge", "-c", "/usr/sbin/munged"], capture_output=True, text=True)
        if r.returncode != 0:
            skip("munged did not start: " + r.stderr.strip())
    for daemon in ("/usr/sbin/slurmctld", "/usr/sbin/slurmd"):
        r = subprocess.run([daemon], capture_output=True, text=True)
        if r.returncode != 0:
            skip(f"{daemon} did not start: {r.stderr.strip()}")
        time.sleep(2)
    deadline = time.time() + 30
    while time.time() < deadline and not slurm_answers():
        time.sleep(1)
    if not slurm_answers():
        log = open("/var/log/slurm/slurmd.log").read()[-600:] if os.path.exists("/var/log/slurm/slurmd.log") else ""
        skip("the node did not come up idle: " + log)
    pids = {n: int(open(f"/run/{n}-sdm.pid").read()) for n in ("slurmctld", "slurmd") if os.path.exists(f"/run/{n}-sdm.pid")}
    json.dump(pids, open(STATE, "w"))
    print(f"started Slurm on {host} ({cpus} CPUs): {pids}")


def stop():
    if not os.path.exists(STATE):
        print("nothing started here")
        return
    for name, pid in json.load(open(STATE)).items():
        try:
            os.kill(pid, 15)
            print(f"stopped {name} ({pid})")
        except ProcessLookupError:
            pass
    os.remove(STATE)


def job_state(job):
    out = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
    fields = dict(kv.split("=", 1) for kv in out.split() if "=" in kv)
    return fields.get("JobState", "?"), int(fields.get("Restarts", "0") or 0)


def wait_done(job, deadline, log):
    while time.time() < deadline:
        state, restarts = job_state(job)
        if state in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL"):
            return state, restarts
        time.sleep(1)
    subprocess.run(["scancel", job])
    print(open(log).read()[-3000:] if os.path.exists(log) else "(no log)")
    expect(False, f"job {job} finished within the cap")


def write_spec(path, store, data, model, folds, seeds):
    with open(path, "w") as f:
        f.write(f"""name: {os.path.basename(path)[:-5]}
store: {store}
data:
  root: {data}
  catalog: {data}/catalog.yaml
  datasets: [P01, P02]
  label: {{column: condition, sensitive: [sensitive], resistant: [resistant]}}
  group_column: sample
models:
  - {model}
protocols:
  - {{name: pooled, folds: {folds}, split: cell}}
seeds: {seeds}
""")


def store_cells(store):
    with h5py.File(store, "r") as f:
        g = f["cells"]
        return [v.decode() if isinstance(v, bytes) else v for v in g["cell_id"][()]], \
               [v.decode() if isinstance(v, bytes) else v for v in g["status"][()]]


def submit(spec, extra=()):
    p = sh([SDM, "submit", spec, "--nodes", "1", "--ntasks-per-node", "3", "--time", "00:10:00", "--site", "local",
            *extra], cwd=WORK)
    expect(p.stdout.startswith("submitted job "), "sdm submit: " + p.stdout.strip())
    return p.stdout.split()[2].rstrip(":")


def dry_run_ids(spec):
    p = sh([SDM, "sweep", spec, "--dry-run", "--json"], cwd=WORK)
    return sorted(c["cell_id"] for c in json.loads(p.stdout)["cells"])


def main():
    if MODE == "start":
        return start()
    if MODE == "stop":
        return stop()
    if not slurm_answers():
        skip("no Slurm cluster answers (the slurm_start fixture could not start one)")
    t0 = time.time()
    os.makedirs(WORK, exist_ok=True)
    name = "slurm_" + MODE
    # One collection per test: submit and drain run at the same time, and one test's `sdm synth` rewriting files
    # the other's job is reading made that job's cells fail.
    data = os.path.join(WORK, "data_" + MODE)
    if not os.path.exists(os.path.join(data, "catalog.yaml")):
        sh([SDM, "synth", "--out", data, "--only", "P01", "P02"])
    store = os.path.join(WORK, name, "store.h5")
    shutil.rmtree(os.path.dirname(store), ignore_errors=True)
    spec = os.path.join(WORK, name + ".yaml")
    log_dir = os.path.join(os.path.dirname(store), "slurm")
    if MODE == "submit":
        write_spec(spec, store, data, "{name: logreg}", 2, "[0, 1]")
        ids = dry_run_ids(spec)
        job = submit(spec)
        log = os.path.join(log_dir, f"slurm-{job}.out")
        DIAGNOSE[:] = [log, store]
        state, restarts = wait_done(job, t0 + CAP_S, log)
        expect(state == "COMPLETED" and restarts == 0, f"job {job} {state} without a requeue")
        got, status = store_cells(store)
        expect(sorted(got) == ids and set(status) == {"done"}, f"the store holds the {len(ids)} cells, all done")
    elif MODE == "drain":
        write_spec(spec, store, data, "{name: noop, config: {sleep_ms: 1500}}", 5, "[0, 1, 2]")
        ids = dry_run_ids(spec)
        job = submit(spec, ["--grace", "60"])
        log = os.path.join(log_dir, f"slurm-{job}.out")
        records = os.path.join(os.path.dirname(store), "records")
        DIAGNOSE[:] = [log, store]
        while time.time() < t0 + CAP_S:
            if os.path.isdir(records) and len(os.listdir(records)) >= 3:
                break
            time.sleep(0.5)
        sh(["scancel", "--batch", "--signal=USR1", job])
        at_signal = len(os.listdir(records))
        expect(1 <= at_signal < len(ids), f"the pre-timeout signal came with {at_signal} of {len(ids)} cells committed")
        state, restarts = wait_done(job, t0 + CAP_S, log)
        text = open(log).read()
        expect("USR1: draining" in text and "sweep exit 75" in text and f"requeued job {job}" in text,
               "the batch script forwarded USR1, the sweep drained (exit 75) and the job requeued itself")
        expect(state == "COMPLETED" and restarts >= 1, f"the requeued job {job} completed (restarts {restarts})")
        got, status = store_cells(store)
        expect(sorted(got) == ids and len(set(got)) == len(got) and set(status) == {"done"},
               f"every one of the {len(ids)} cells exactly once, all done")
        journal = [json.loads(line) for line in open(os.path.join(os.path.dirname(store), "journal.jsonl"))]
        runs = {}
        for e in journal:
            if e["status"] == "running":
                runs[e["cell_id"]] = runs.get(e["cell_id"], 0) + 1
        expect(max(runs.values()) == 1, "no cell was started twice (finished cells were not redone after the requeue)")
    else:
        sys.exit("unknown mode " + MODE)
    print("PASS", MODE)


if __name__ == "__main__":
    main()
