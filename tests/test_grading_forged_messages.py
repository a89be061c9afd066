"""Forged and malformed messages on the result pipe: that check is an ``error``, the grader carries on.

The submission finds the pipe's descriptor in ``sys.argv`` and the check's id in the
child runner's frame, and writes its own message before the runner can.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from grading_attacks import attack

from grading import grader
from grading.grader import grade_folder
from grading.sandbox import Call, ChildCheck, SandboxLimits, run_submission

FORGE = """
import json, struct

def _check_id():
    frame = sys._getframe()
    while frame is not None:
        check = frame.f_locals.get("check")
        if isinstance(check, dict) and "id" in check:
            return check["id"]
        frame = frame.f_back
    return "?"

def _send(body, length=None):
    fd = int(sys.argv[2])
    os.write(fd, struct.pack(">Q", len(body) if length is None else length) + body)

def forge(kind):
    done = {{"type": "done", "id": _check_id(), "results": [], "error": None, "watched": {{}}, "arrays": []}}
    if kind == "bad_call_index":
        done["error"] = {{"call": 99, "type": "X", "message": "", "where": ""}}
    elif kind == "deep_nesting":
        _send(b'{{"type": "done", "arrays": [], "results": ' + b"[" * 200000 + b"]" * 200000 + b"}}")
        return 1
    elif kind == "huge_length":
        _send(b"", length=1 << 62)
        return 1
    elif kind == "wrong_types":
        done["results"] = "everything passed"
    elif kind == "too_many_results":
        done["results"] = [{{"array": 0}}] * 5
        done["arrays"] = [{{"dtype": "<f8", "shape": []}}]
        _send(json.dumps(done).encode() + b"\\0" * 8)
        return 1
    elif kind == "array_out_of_range":
        done["results"] = [{{"array": 7}}]
    elif kind == "object_dtype":
        done["results"] = [{{"array": 0}}]
        done["arrays"] = [{{"dtype": "|O", "shape": [1]}}]
    elif kind == "deep_tree":
        node = {{"array": 0}}
        for _ in range(60):
            node = {{"seq": [node], "type": "list"}}
        done["results"] = [node]
    elif kind == "garbage":
        os.write(int(sys.argv[2]), os.urandom(1 << 16))
        return 1
    elif kind == "flood":
        _send(b"", length=(1 << 26) - 10)
        while True:
            os.write(int(sys.argv[2]), b"x" * (1 << 16))
    _send(json.dumps(done).encode())
    return 1

def fine():
    return 42
"""
KINDS = [
    "bad_call_index", "deep_nesting", "huge_length", "wrong_types", "too_many_results",
    "array_out_of_range", "object_dtype", "deep_tree", "garbage", "flood",
]  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
def test_a_forged_message_makes_that_check_and_the_rest_an_error_and_a_timeout_only_that_check(tmp_path, kind):
    path = tmp_path / "forger.py"
    path.write_text(attack(FORGE))
    checks = [
        ChildCheck("forge", (Call("forge", ({"literal": kind},)),), {}),
        ChildCheck("fine", (Call("fine", ()),), {}),
    ]
    run = run_submission(path, ["forge", "fine"], checks, SandboxLimits(function_seconds=5.0))
    forged = run.checks["forge"]
    assert forged.state in ("error", "timeout"), (forged.state, forged.message)
    if forged.state == "error":  # a forger gets no fresh child: the rest of its checks are errors too
        assert forged.message.startswith("the submission's process sent a malformed message")
        assert (run.checks["fine"].state, run.checks["fine"].message) == ("error", forged.message)
    else:
        assert run.checks["fine"].state == "done" and int(run.checks["fine"].results[0]) == 42


def test_refbp_check_reports_a_forged_call_index_as_an_error(tmp_path):
    from refbp.cli import main

    source = attack(FORGE) + "\n\ndef relu_forward(x):\n    forge('bad_call_index')\n    return x, x\n"
    path = tmp_path / "forger.py"
    path.write_text(source)
    assert main(["check", str(path), "--interface", "layers", "--json", str(tmp_path / "r.json")]) == 1
    data = json.loads((tmp_path / "r.json").read_text())
    relu = [c for c in data["checks"] if c["check"] == "relu_forward"]
    assert {c["status"] for c in relu} == {"error"} and "malformed" in relu[0]["message"]
    assert data["isolation"] == "namespaces"


def test_an_exception_grading_one_submission_is_contained_to_it(tmp_path, monkeypatch):
    correct = Path(__file__).parent / "submissions" / "layers" / "vectorised.py"
    paths = []
    for name in ("a.py", "b.py", "c.py"):
        paths.append(tmp_path / name)
        paths[-1].write_text(correct.read_text())
    real = grader.run_submission

    def failing_for_b(path, *args, **kwargs):
        if path.name == "b.py":
            raise RuntimeError("disk on fire")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(grader, "run_submission", failing_for_b)
    results = grade_folder(paths, "layers", 0, SandboxLimits(function_seconds=5.0), jobs=2)
    assert [r.passed for r in results] == [True, False, True]
    assert {r.status for r in results[1].rows} == {"error"}
    assert all("RuntimeError: disk on fire" in r.message for r in results[1].rows)
    assert results[1].max_score == results[0].max_score and results[1].score == 0
    np.testing.assert_equal(results[0].score, results[2].score)


def test_a_forged_import_report_fails_every_check_with_a_plain_message(tmp_path):
    source = attack(FORGE) + (
        "\n_send(json.dumps({'type': 'imported', 'ok': True, 'defined': {'relu_forward': 1}, 'arrays': []}).encode())\n"
        + "def relu_forward(x):\n    return x, x\n"
    )
    path = tmp_path / "forger.py"
    path.write_text(source)
    result = grader.grade_submission(path, "layers", 0, SandboxLimits(function_seconds=5.0))
    assert {r.status for r in result.rows} == {"error"} and result.score == 0
    assert "sent a malformed message (the list of defined functions is not a list of names)" in result.rows[0].message


HOSTILE_HEADERS = {
    "integer_past_the_digit_limit": 'b\'{"type":"imported","ok":true,"defined":[],"x":\' + b\'1\' * 5000 + b\'}\'',
    "empty_array_of_huge_shape": "json.dumps({'type': 'imported', 'ok': True, 'defined': [],"
    " 'arrays': [{'dtype': '<f8', 'shape': [0, 2**70]}]}).encode()",
    "sixty_megabytes_of_empty_objects": 'b\'{"type":"imported","ok":true,"defined":[],"x":[\''
    " + b'{},' * (20 << 20) + b'{}]}'",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_HEADERS))
def test_refbp_check_writes_its_report_for_a_hostile_import_header(tmp_path, name, capsys):
    from refbp.cli import main

    path = tmp_path / "forger.py"
    path.write_text(attack(FORGE) + f"\n_send({HOSTILE_HEADERS[name]})\n")
    assert main(["check", str(path), "--interface", "layers", "--json", str(tmp_path / "r.json")]) == 1
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["passed"] is False and data["score"] == 0 and len(data["checks"]) > 10
    assert {row["status"] for row in data["checks"]} == {"error"}
    assert "malformed message" in data["checks"][0]["message"]
    assert "Traceback" not in capsys.readouterr().err


def test_a_forger_in_its_first_check_gets_no_fresh_child_for_the_others(tmp_path):
    from refbp.cli import main

    source = attack(FORGE) + "\n\ndef affine_forward(x, w, b):\n    forge('wrong_types')\n"
    source += "\ndef relu_forward(x):\n    return np.maximum(x, 0), x\n"
    path = tmp_path / "forger.py"
    path.write_text("import numpy as np\n" + source)
    assert main(["check", str(path), "--interface", "layers", "--json", str(tmp_path / "r.json")]) == 1
    rows = json.loads((tmp_path / "r.json").read_text())["checks"]
    relu = [row for row in rows if row["check"] == "relu_forward"]
    assert relu and {row["status"] for row in rows} == {"error", "missing"}
    assert all(row["status"] == "error" and "results are not a list" in row["message"] for row in relu)
