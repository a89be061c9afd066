"""The sandboxed child: load one submission, call its functions, send the raw results back.

Run as a script (``python -I child.py READ_FD WRITE_FD LIMITS_JSON``) from a copy of this
file and :mod:`wire` in a folder of their own, never imported as part of the package. The
OS isolates it (:mod:`grading.isolation`); the audit hook below only turns the commonest
attempts into clear messages for the student, and is no boundary. In order, it

1. applies the resource limits (CPU seconds, address space, file size, processes, no core);
2. imports :mod:`wire` and :mod:`legacy_scalars` (and with them NumPy) from its own folder, then forgets that folder
   and puts the working folder (the submission and its support files) on ``sys.path``;
3. reads the request: the submission file, the functions to call and their input arrays;
4. installs an audit hook that refuses blocked imports (the reference packages, torch),
   opening files inside them, starting processes, sending signals, ``ctypes`` and sockets;
5. caps ``sys.stdout``/``sys.stderr`` and imports the submission;
6. runs each check's calls, reporting ``start`` before and ``done`` after each check; a check
   with ``size1_scalars = "legacy"`` hands the functions its inputs as
   :class:`legacy_scalars.LegacyScalarArray`, and its results travel as plain arrays.

Nothing here compares numbers: the grader does, after this process is gone.
"""

import json
import os
import resource
import signal
import sys
import traceback
import types


def _apply_limits(limits: dict) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write fails with EFBIG instead of killing us
    for name, value in limits.items():
        which = getattr(resource, name)
        _, hard = resource.getrlimit(which)
        soft = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (soft, soft if name != "RLIMIT_CPU" else hard))


LIMITS = json.loads(sys.argv[3])
_apply_limits(LIMITS["rlimits"])
READ_FD, WRITE_FD = int(sys.argv[1]), int(sys.argv[2])
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [_HERE, *LIMITS["path"]]  # this folder for wire, then where NumPy lies in a namespaces sandbox
import legacy_scalars  # noqa: E402  (after the limits, from this folder)
import wire  # noqa: E402

sys.path.remove(_HERE)
sys.path.insert(0, "")  # the working folder: the submission's support files import from there

_write_message = wire.write_message
_encode_tree = wire.encode_tree
_copy = wire.np.ndarray.copy
_legacy = legacy_scalars.legacy
_plain_view = legacy_scalars.plain_view
_LEGACY = legacy_scalars.LegacyScalarArray
_empty = wire.np.zeros(0)
_exc_info = sys.exc_info
_extract_tb = traceback.extract_tb
_os_exit = os._exit
_tuple = tuple
#: The pseudo-function of a call that only returns its arguments (state an earlier call left in a dict).
ARGUMENTS = ":arguments"


class _CappedText:
    """A text stream that keeps at most ``cap`` characters and drops the rest silently."""

    def __init__(self, stream, cap: int) -> None:
        self._stream, self._left = stream, cap

    def write(self, text: str) -> int:
        text = str(text)
        if self._left > 0:
            part = text[: self._left]
            self._left -= len(part)
            try:
                self._stream.write(part)
                self._stream.flush()
            except OSError:
                self._left = 0
        return len(text)

    def flush(self) -> None:
        return None

    def isatty(self) -> bool:
        return False


def _send(kind: str, arrays=None, **fields) -> None:
    _write_message(WRITE_FD, {"type": kind, **fields}, arrays or [])


def _error_text(module_file: str) -> dict:
    """The exception being handled: type, first line of the message, and the submission's last line in the traceback."""
    exc_type, exc, tb = _exc_info()
    message = str(exc).splitlines()[0] if str(exc) else ""
    where = ""
    for frame in _extract_tb(tb):
        if os.path.basename(frame.filename) == module_file:
            where = f"line {frame.lineno}: {(frame.line or '').strip()}"
    return {"type": exc_type.__name__, "message": message[:300], "where": where[:200]}


def _install_guard(blocked: list, blocked_paths: list, allow_processes: bool) -> None:
    blocked_roots = tuple(blocked)
    paths = tuple(os.path.join(p, "") for p in blocked_paths)
    process_events = {
        "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.exec", "os.system", "subprocess.Popen",
    }  # fmt: skip
    always = {
        "os.kill", "os.killpg", "signal.pthread_kill",
        "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata", "socket.connect", "socket.bind", "socket.sendto",
    }  # fmt: skip
    startswith = str.startswith
    realpath, fsdecode = os.path.realpath, os.fsdecode

    def hook(event: str, args: tuple) -> None:
        if event == "import":
            name = args[0] or ""
            if name.split(".")[0] in blocked_roots:
                raise ImportError(f"importing {name} is not allowed in a graded submission")
        elif event == "open":
            path = args[0]
            if isinstance(path, str | bytes) and paths and startswith(realpath(fsdecode(path)), paths):
                raise PermissionError(f"reading {path} is not allowed in a graded submission")
        elif event in always or (event in process_events and not allow_processes):
            raise PermissionError(f"{event} is not allowed in a graded submission")

    sys.addaudithook(hook)


def _resolve(arg, inputs: dict, results: list, arguments: list):
    if "input" in arg:
        return inputs[arg["input"]]
    if "literal" in arg:
        return arg["literal"]
    if "dict" in arg:
        return {k: _resolve(v, inputs, results, arguments) for k, v in arg["dict"].items()}
    # "argument": the very object passed to an earlier call, as that call left it
    value = arguments[arg["argument"]][arg["index"]] if "argument" in arg else results[arg["result"]]
    for step in arg["path"]:
        value = value[step]
    return value


def _run_check(module, check: dict, arrays: list, names: dict, module_file: str, max_array_bytes: int) -> None:
    _send("start", id=check["id"])
    inputs = {name: _copy(arrays[names[key]]) for name, key in check["keys"].items()}
    if check["size1_scalars"] == "legacy":
        inputs = {name: _legacy(array) for name, array in inputs.items()}
    results, trees, out_arrays, error, arguments = [], [], [], None, []
    for index, call in enumerate(check["calls"]):
        try:
            func = _tuple if call["function"] == ARGUMENTS else getattr(module, call["function"])
            args = [_resolve(a, inputs, results, arguments) for a in call["args"]]
        except BaseException:  # an earlier call returned something without the item this call needs
            error = {"call": index, "stage": "arguments", **_error_text(module_file)}
            break
        arguments.append(args)
        try:
            value = func(args) if func is _tuple else func(*args)
        except BaseException:  # anything the submission raises, SystemExit included, is reported
            error = {"call": index, **_error_text(module_file)}
            break
        results.append(value)
        trees.append(_encode_tree(value, out_arrays, max_array_bytes=max_array_bytes, plain=_LEGACY))
    watched = {}
    for name in check["watch"]:
        view = _plain_view(inputs[name])
        out_arrays.append(_empty if view is None else view)
        watched[name] = len(out_arrays) - 1
    _send("done", out_arrays, id=check["id"], results=trees, error=error, watched=watched)


def main() -> None:
    header, arrays = wire.read_message(lambda n: os.read(READ_FD, n), max_bytes=LIMITS["max_request_bytes"])
    names = {name: i for i, name in enumerate(header["names"])}
    module_file = os.path.basename(header["module"])
    _install_guard(header["blocked"], header["blocked_paths"], header["allow_processes"])
    cap = header["output_chars"]
    sys.stdout = _CappedText(sys.stdout, cap)
    sys.stderr = _CappedText(sys.stderr, cap)
    sys.stdin = None
    sys.path.insert(0, os.getcwd())  # support files (course helper modules) lie beside the submission
    try:
        # Compiled under its bare file name, so that tracebacks and warnings name no temporary folder.
        module = types.ModuleType("submission")
        module.__file__ = module_file
        sys.modules["submission"] = module
        with open(module_file, "rb") as fh:
            source = fh.read()
        exec(compile(source, module_file, "exec"), module.__dict__)
    except BaseException:  # a submission may raise anything (SystemExit included) while importing
        _send("imported", ok=False, error=_error_text(module_file), defined=[])
        return
    defined = [name for name in header["functions"] if callable(getattr(module, name, None))]
    _send("imported", ok=True, error=None, defined=defined)
    for check in header["checks"]:
        _run_check(module, check, arrays, names, module_file, LIMITS["max_array_bytes"])
    _send("finished")


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    _os_exit(0)  # skip interpreter shutdown: atexit handlers and finalizers of the submission do not run
