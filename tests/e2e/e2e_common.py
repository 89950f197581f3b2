"""What the end-to-end scripts share: the environment sdm runs in under mpirun, the command line, and the
run / expect helpers (a failed command or check ends the script with FAILED and what was expected)."""
import os
import subprocess
import sys
import time

# mpirun as root, oversubscribed, one BLAS thread per rank, no munge stall at launch (as tools/mpi_env.sh)
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
           PMIX_MCA_psec=os.environ.get("PMIX_MCA_psec", "^munge"))
T0 = time.time()


def command(sdm, mpiexec, args, np_=None):
    """`sdm ARGS`, under `mpiexec -np NP` when np_ is given."""
    return ([mpiexec, "-np", str(np_), "--oversubscribe", "--allow-run-as-root"] if np_ else []) + [sdm] + list(args)


def make_run(sdm, mpiexec, timeout):
    """run(args, np_=None, check=True, env=None, timeout=...): the finished process; with check, a non-zero
    exit ends the script printing the command and its output."""
    def run(args, np_=None, check=True, env=None, timeout=timeout):
        cmd = command(sdm, mpiexec, args, np_)
        p = subprocess.run(cmd, env=env or ENV, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            sys.exit(f"FAILED ({p.returncode}): {' '.join(cmd)}\n{p.stdout}\n{p.stderr}")
        return p
    return run


def expect(cond, what):
    if not cond:
        sys.exit("FAILED: " + what)
    print(f"ok ({time.time() - T0:.1f} s):", what)
