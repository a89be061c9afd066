"""Attacks on what the ``namespaces`` sandbox leaves reachable: host sysctls, /proc/sysrq-trigger, host paths
in /proc/self/mountinfo, memory held outside ``--memory`` in /dev, /dev/shm and memfd files.

The grader runs as root on CI, where bubblewrap maps the child's uid 65534 to host uid 0:
the kernel then lets it write any /proc/sys file whose mode allows root, so the sandbox
must have no writable procfs at all. Each submission reports what it managed; the
report's captured output carries it back.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from grading import isolation

pytestmark = pytest.mark.skipif(
    isolation.unavailable_reason("namespaces") is not None, reason="bubblewrap namespaces are not offered here"
)

PROC_WRITES = r"""
import os
for path in ("/proc/sys/kernel/core_uses_pid", "/proc/sys/vm/drop_caches", "/proc/sysrq-trigger",
             "/proc/sys/kernel/core_pattern"):
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError as err:
        print("refused", path, err.errno)
        continue
    try:
        if path.endswith("core_uses_pid"):
            with open(path) as fh:
                os.write(fd, fh.read().encode())   # the value it already has: no change on the host
            print("WRITTEN", path)
        else:
            print("OPEN_FOR_WRITE", path)
    except OSError as err:
        print("refused", path, err.errno)
    finally:
        os.close(fd)
for path in ("/proc/self/mountinfo", "/proc/1/mountinfo"):
    try:
        with open(path) as fh:
            print("MOUNTINFO", fh.read().replace("\n", " | "))
    except OSError as err:
        print("refused", path, err.errno)
"""

DEV_FILL = r"""
chunk = b"\0" * (1 << 20)
n = 0
for folder in ("/dev/shm", "/dev", "/box/work"):
    try:
        while n < 200:
            with open(f"{folder}/fill{n}", "wb") as fh:
                fh.write(chunk)
            n += 1
    except OSError:
        pass
print(f"HELD_OUTSIDE_MIB={n}")
"""

THREADS = r"""
import threading
threading.stack_size(64 * 1024)
gate, n = threading.Event(), 0
try:
    for _ in range(100):
        threading.Thread(target=gate.wait, daemon=True).start()
        n += 1
except RuntimeError:
    pass
print(f"THREADS_STARTED={n}")
gate.set()
"""

MEMFD_FILL = r"""
import os
chunk, fds = b"\0" * (1 << 20), []
try:
    while len(fds) < 200:
        fd = os.memfd_create("held")
        os.write(fd, chunk)
        fds.append(fd)
except OSError as err:
    print("memfd refused", err.errno)
print(f"HELD_OUTSIDE_MIB={len(fds)}")
"""


def _output(tmp_path: Path, source: str, *extra: str) -> str:
    sub = tmp_path / "attack.py"
    sub.write_text(source)
    md = tmp_path / "feedback.md"
    done = subprocess.run(
        [sys.executable, "-m", "refbp.cli", "check", str(sub), "--interface", "layers", "--markdown", str(md),
         "--isolation", "namespaces", *extra],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    return md.read_text()


def test_no_host_sysctl_nor_sysrq_trigger_is_writable_and_no_host_path_shows(tmp_path):
    md = _output(tmp_path, PROC_WRITES)
    assert md.count("refused /proc/") == 6, md
    assert "WRITTEN" not in md and "OPEN_FOR_WRITE" not in md
    assert "MOUNTINFO" not in md
    assert str(tmp_path) not in md.replace(str(tmp_path / "attack.py"), "")


def test_files_in_dev_shm_and_the_scratch_folder_stay_under_the_scratch_limit(tmp_path):
    md = _output(tmp_path, DEV_FILL, "--memory", "128")
    held = int(re.search(r"HELD_OUTSIDE_MIB=(\d+)", md).group(1))
    assert 1 <= held < 128, f"the submission held {held} MiB in files outside its 128 MiB memory limit"


def test_memfd_files_are_refused(tmp_path):
    md = _output(tmp_path, MEMFD_FILL, "--memory", "128")
    assert "memfd refused 1" in md
    assert "HELD_OUTSIDE_MIB=0" in md


def test_threads_stay_under_the_process_limit_so_the_namespace_is_not_host_root(tmp_path):
    # The kernel counts no RLIMIT_NPROC against host root: the limit holding shows the mapping is not to uid 0.
    md = _output(tmp_path, THREADS)
    started = int(re.search(r"THREADS_STARTED=(\d+)", md).group(1))
    assert 1 <= started < 32, f"{started} threads started although RLIMIT_NPROC is 32"
