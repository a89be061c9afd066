"""A seccomp filter for the sandboxed child (x86-64), as the raw BPF program bubblewrap loads with ``--seccomp FD``.

The filter refuses, with ``EPERM``, the system calls a graded function never needs and
an escape would: debugging and reading other processes (``ptrace``, ``process_vm_*``),
mounting and namespaces (``mount``, ``unshare``, ``setns``, …), kernel modules and
``kexec``, keyrings, ``bpf``, ``perf_event_open``, ``userfaultfd``, ``io_uring``, file
handles, anonymous memory files (``memfd_create``, ``memfd_secret``: memory held
outside the address-space limit), and every syscall of the x32 ABI. Unless processes are allowed it also refuses
new processes: ``fork``, ``vfork`` and any ``clone`` without ``CLONE_THREAD`` (threads,
which NumPy and Python may start, stay possible); ``clone3`` answers ``ENOSYS`` so that
the C library falls back to ``clone``, whose flags the filter can read. A call from
another architecture (a 32-bit ``int 0x80``) kills the process.

Each instruction is ``struct sock_filter {u16 code; u8 jt; u8 jf; u32 k}``; the data
examined is ``struct seccomp_data {int nr; u32 arch; u64 ip; u64 args[6]}`` (man 2 seccomp).
"""

from __future__ import annotations

import platform
import struct

_AUDIT_ARCH_X86_64 = 0xC000003E
_X32_BIT = 0x40000000
_CLONE_THREAD = 0x00010000

_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JGE_K = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_JSET_K = 0x45  # BPF_JMP | BPF_JSET | BPF_K
_RET_K = 0x06  # BPF_RET | BPF_K

_ALLOW = 0x7FFF0000
_KILL_PROCESS = 0x80000000
_ERRNO = 0x00050000
_EPERM, _ENOSYS = 1, 38

#: x86-64 numbers of the calls refused always (name: number, from the kernel's syscall_64.tbl).
DENIED = {
    "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312,
    "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161, "unshare": 272, "setns": 308,
    "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
    "mount_setattr": 442, "kexec_load": 246, "kexec_file_load": 320, "init_module": 175,
    "finit_module": 313, "delete_module": 176, "add_key": 248, "request_key": 249, "keyctl": 250,
    "bpf": 321, "perf_event_open": 298, "userfaultfd": 323, "io_uring_setup": 425, "io_uring_enter": 426,
    "io_uring_register": 427, "name_to_handle_at": 303, "open_by_handle_at": 304, "personality": 135,
    "acct": 163, "swapon": 167, "swapoff": 168, "reboot": 169, "syslog": 103, "quotactl": 179,
    "memfd_create": 319, "memfd_secret": 447,
}  # fmt: skip
#: x86-64 numbers of the calls that start a process.
PROCESS_CALLS = {"fork": 57, "vfork": 58}
_CLONE, _CLONE3 = 56, 435


def supported() -> bool:
    """Whether this machine's architecture is the one the filter is written for (x86-64)."""
    return platform.machine() in ("x86_64", "AMD64")


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def program(allow_processes: bool) -> bytes:
    """The BPF program (bytes, native byte order) for ``--seccomp``; see the module docstring."""
    denied = sorted(DENIED.values()) + ([] if allow_processes else sorted(PROCESS_CALLS.values()))
    body = [
        _insn(_LD_W_ABS, 4),  # arch
        _insn(_JEQ_K, _AUDIT_ARCH_X86_64, jt=1),
        _insn(_RET_K, _KILL_PROCESS),
        _insn(_LD_W_ABS, 0),  # nr
        _insn(_JGE_K, _X32_BIT, jf=1),
        _insn(_RET_K, _ERRNO | _EPERM),
    ]
    for number in denied:  # on a match, fall through to the refusal; else skip it
        body += [_insn(_JEQ_K, number, jf=1), _insn(_RET_K, _ERRNO | _EPERM)]
    if not allow_processes:
        body += [
            _insn(_JEQ_K, _CLONE3, jf=1),
            _insn(_RET_K, _ERRNO | _ENOSYS),
            _insn(_JEQ_K, _CLONE, jf=3),
            _insn(_LD_W_ABS, 16),  # low half of args[0]: the clone flags
            _insn(_JSET_K, _CLONE_THREAD, jt=1),
            _insn(_RET_K, _ERRNO | _EPERM),
        ]
    return b"".join([*body, _insn(_RET_K, _ALLOW)])
