#!/usr/bin/python3
"""Runs `sdm doctor --json` under mpirun and checks the report a user relies on.

usage: check_doctor.py SDM MPIEXEC NP [--expect-fail --scratch DIR]
"""
import json
import subprocess
import sys


def main() -> int:
    sdm, mpiexec, np = sys.argv[1], sys.argv[2], int(sys.argv[3])
    expect_fail = "--expect-fail" in sys.argv
    extra = []
    if "--scratch" in sys.argv:
        extra = ["--scratch", sys.argv[sys.argv.index("--scratch") + 1]]
    cmd = [mpiexec, "-np", str(np), "--oversubscribe", "--allow-run-as-root", sdm, "doctor", "--json", *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=150)
    sys.stderr.write(proc.stderr)
    report = json.loads(proc.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    problems = []

    def expect(cond, what):
        if not cond:
            problems.append(what)

    expect(report["size"] == np, f"size {report['size']} != {np}")
    expect(sorted(r["rank"] for r in report["ranks"]) == list(range(np)), "every rank reports once")
    expect(len({(r["host"], r["local_rank"]) for r in report["ranks"]}) == np, "local ranks are distinct per host")
    expect(all(r["blas_library"] != "not loaded" for r in report["ranks"]), "BLAS is detected")
    expect(all(r["torch_threads"] >= 1 for r in report["ranks"]), "torch threads reported")
    for name in ("mpi-thread-level", "mpi-allreduce-1MiB", "mpi-allreduce-64MiB", "hdf5-parallel-io", "mpi-launch"):
        expect(name in checks, f"check {name} present")
    if expect_fail:
        expect(proc.returncode != 0, f"exit code {proc.returncode} should be non-zero")
        expect(not report["pass"], "overall FAIL")
        expect(not checks["hdf5-parallel-io"]["pass"], "hdf5 check fails on an unusable scratch dir")
        expect(checks["mpi-allreduce-1MiB"]["pass"], "MPI checks still pass")
    else:
        expect(proc.returncode == 0, f"exit code {proc.returncode}")
        expect(report["pass"], "overall PASS")
        for name in ("mpi-allreduce-1MiB", "mpi-allreduce-64MiB"):
            figures = checks[name]["figures"]
            expect(figures["wrong_elements"] == 0, f"{name} exact")
            expect(figures["algbw_bytes_per_s"] > 0, f"{name} bandwidth measured")
        expect(checks["hdf5-parallel-io"]["figures"]["io_mode"] == "contiguous-collective", "collective I/O")
    for p in problems:
        print("FAILED:", p)
    print(f"{len(problems) == 0 and 1 or 0} passed, {len(problems) and 1 or 0} failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
