#!/usr/bin/env python3
"""Sorts the inputs a fuzz run kept (crash-*, timeout-*, oom-*, leak-*) into ours and upstream (tools/fuzz.sh).

  triage.py TARGET_BINARY ARTIFACT_DIR KNOWN_UPSTREAM_FILE [--strict]

Each artifact is replayed once with the target; the report's kind (ASan error, UBSan, timeout, OOM, an exception
that escaped as something other than sdm::Error, an inconsistent accepted result) and its first frame outside the
sanitizer runtime and libc decide where it belongs:
  - first frame inside libhdf5 (the file reader hands HDF5 a hostile file and HDF5 itself fails) on memory HDF5
    allocated: upstream. Its signature (first named HDF5 function, kind) should be listed in KNOWN_UPSTREAM_FILE,
    each entry reviewed by hand (is it really HDF5's bug and not a bad call of ours?); a new one is reported, and
    fails the run with --strict (the long runs) but not without (CI's smoke run, whose inputs vary with speed).
  - an overflow of a buffer sdm allocated is ours wherever it happens (a wrong size passed to HDF5).
  - anything else is ours: the run fails, and the input belongs in tests/fuzz/regressions/<target>/ once fixed.
Upstream artifacts are moved to ARTIFACT_DIR/upstream/ so a long run's directory shows only what is left to fix.
Exit 1 when anything is ours (or, with --strict, unreviewed).
"""
import os
import re
import shutil
import subprocess
import sys

# the sanitizer runtime, libFuzzer, the allocator and libc: where an error or the timeout alarm lands, never where it
# comes from (a timeout can fire inside ASan's free, called from libhdf5's own loop)
SKIP = re.compile(r"__interceptor_|__asan|__sanitizer|__ubsan|fuzzer::|LLVMFuzzer|operator new|operator delete|"
                  r"\bmalloc\b|\bcalloc\b|\bc?free\b|"
                  r"\b(strdup|strndup|strlen|strnlen|strcmp|strncmp|memcpy|memmove|memset|memcmp)\b|"
                  r"\brealloc\b|libc\.so|libstdc\+\+|std::allocator|std::__new_allocator|__gnu_cxx::new_allocator|"
                  r"__libc_start|_start\b")
ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FRAME = re.compile(r"^\s*#\d+ 0x[0-9a-f]+\s+(?:in (?P<fn>.+?) )?(?:\((?P<mod>[^)+]+)\+0x[0-9a-f]+\)|(?P<src>/\S+))")


def kind_of(text):
    m = re.search(r"SUMMARY: AddressSanitizer: ([\w-]+)", text) or re.search(r"ERROR: AddressSanitizer: ([\w-]+)", text)
    if m:
        return m.group(1)
    if "runtime error:" in text:
        return "undefined-behaviour"
    if "ALARM: working on the last Unit" in text:
        return "timeout"
    if "out-of-memory" in text or "malloc limit" in text:
        return "out-of-memory"
    if "ERROR: LeakSanitizer" in text:
        return "leak"
    m = re.search(r"(escaped as a \S+|returned an inconsistent|do not match X)", text)
    if m:
        return "contract: " + m.group(1)
    return "unknown"


def frames(text):
    out = []
    for line in text.splitlines():
        m = FRAME.match(line)
        if m:
            out.append((m.group("fn") or "", m.group("mod") or m.group("src") or "", m.group("src") or ""))
    return out


def classify(binary, path):
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:fast_unwind_on_malloc=0", UBSAN_OPTIONS="print_stacktrace=1")
    try:
        p = subprocess.run([binary, "-timeout=5", "-rss_limit_mb=4096", path], capture_output=True, text=True,
                           errors="replace", env=env, timeout=120)
        text = p.stdout + p.stderr
        if p.returncode == 0:
            return "no longer reproduces", None, None, text
    except subprocess.TimeoutExpired as e:
        text = (e.stdout or "") + (e.stderr or "") if isinstance(e.stdout, str) else ""
        text += "\nALARM: working on the last Unit (replay timed out)"
    kind = kind_of(text)
    # a buffer overflowed inside libhdf5 is still ours if we allocated it (a wrong size passed to H5Dread)
    allocated = text.split("allocated by thread", 1)[1] if "allocated by thread" in text else ""
    if any(src.startswith(ROOT + "/") and not SKIP.search(fn) for fn, _, src in frames(allocated.split("SUMMARY:", 1)[0])):
        return "ours", kind + " (a buffer sdm allocated)", "see the allocation stack", text
    stack = frames(text.split("allocated by thread", 1)[0])
    first = next(((fn, mod) for fn, mod, _ in stack if not SKIP.search(fn + " " + mod)), ("", ""))
    hdf5_fn = next((fn for fn, mod, _ in stack if "libhdf5" in mod and fn), "")
    if "libhdf5" in first[1]:
        # a timeout interrupts the loop wherever it happens to be, so one loop shows many function names
        return "upstream", kind, "libhdf5" if kind == "timeout" else hdf5_fn or "(unnamed libhdf5 frame)", text
    return "ours", kind, first[0] or first[1], text


def main():
    binary, artifacts, known_file = sys.argv[1:4]
    strict = "--strict" in sys.argv[4:]
    known = set()
    if os.path.exists(known_file):
        for line in open(known_file):
            line = line.split("#", 1)[0].strip()
            if line:
                fn, kind = line.split()[:2]
                known.add((fn, kind))
    bad = new_upstream = 0
    names = sorted(n for n in os.listdir(artifacts) if re.match(r"(crash|timeout|oom|leak|slow-unit)-", n))
    for name in names:
        path = os.path.join(artifacts, name)
        where, kind, sig, text = classify(binary, path)
        if where == "upstream" and (sig, kind) in known:
            os.makedirs(os.path.join(artifacts, "upstream"), exist_ok=True)
            shutil.move(path, os.path.join(artifacts, "upstream", name))
            print(f"upstream (known): {name}: {kind} in {sig}")
        elif where == "no longer reproduces":
            print(f"does not reproduce alone: {name} (left in place)")
        elif where == "upstream" and not strict:
            new_upstream += 1
            print(f"upstream, NEW SIGNATURE (review it, then list it in {known_file}): {name}: {kind} in {sig}")
        else:
            bad += 1
            label = "upstream, NOT YET REVIEWED" if where == "upstream" else "OURS"
            print(f"{label}: {name}: {kind} at {sig}")
            print("\n".join(text.splitlines()[-40:]))
    print(f"triage: {len(names)} artifacts, {bad} of ours to fix, {new_upstream} new upstream signatures")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
