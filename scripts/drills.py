"""Run every test of the reliability drills (tests/drills.py) in one pytest process, then
print one line per drill and a closing count; exit non-zero when any drill failed.

    R2   passed   9 tests  a webhook delivered 5 times at once, ...
    R10  failed  12 tests  malformed and extreme inbound ...
         failed: tests/test_drills.py::test_r10_a_long_answer_is_cut_only_between_graphemes
    drills: 13 passed, 1 failed

A drill passes when every test it names ran and passed (each parametrisation of a test,
each test of a file named whole). A test that failed, errored, was skipped or never ran
(a node id that names no test) fails its drill. Extra arguments go to pytest
(``scripts/drills.py -x``); ``--only R2,W1`` runs those drills alone.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.drills import DRILLS, node_exists  # noqa: E402

PASSED = "passed"


def _node_of(case: ET.Element) -> str:
    """The node id of a junit ``testcase``: ``tests/x.py::test_y[param]`` (or
    ``tests/x.py::TestC::test_y``)."""
    classname, name = case.get("classname", ""), case.get("name", "")
    parts = classname.split(".")
    for cut in range(len(parts), 0, -1):
        path = "/".join(parts[:cut]) + ".py"
        if (ROOT / path).is_file():
            return "::".join([path, *parts[cut:], name])
    return f"{classname}::{name}"


def _outcome(case: ET.Element) -> str:
    for child in case:
        if child.tag in ("failure", "error"):
            return "failed" if child.tag == "failure" else "error"
        if child.tag == "skipped":
            return "xfailed" if child.get("type") == "pytest.xfail" else "skipped"
    return PASSED


def _results(report: Path) -> dict[str, str]:
    """node id -> outcome; a test that errored in teardown after passing counts as error."""
    out: dict[str, str] = {}
    if not report.is_file():
        return out
    for case in ET.parse(report).getroot().iter("testcase"):
        node, outcome = _node_of(case), _outcome(case)
        if out.get(node, PASSED) == PASSED:
            out[node] = outcome
    return out


def _matches(wanted: str, node: str) -> bool:
    """Whether the result ``node`` belongs to the map's ``wanted`` (a file, or a test with
    every parametrisation)."""
    if "::" not in wanted:
        return node.split("::", 1)[0] == wanted
    return node == wanted or node.startswith(f"{wanted}[")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="comma-separated drills to run (default: all)")
    args, pytest_args = parser.parse_known_args(argv)
    chosen = [d.strip() for d in args.only.split(",")] if args.only else list(DRILLS)
    unknown = [d for d in chosen if d not in DRILLS]
    if unknown:
        parser.error(f"unknown drill(s) {unknown}; known: {', '.join(DRILLS)}")

    wanted = list(dict.fromkeys(node for name in chosen for node in DRILLS[name].tests))
    # pytest stops before running anything when one node id names nothing: such ids are
    # left out of the run and fail their drill here.
    runnable = [node for node in wanted if node_exists(node)]
    with tempfile.TemporaryDirectory(prefix="salon-drills-") as tmp:
        report = Path(tmp) / "drills.xml"
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                   "-o", "console_output_style=classic", f"--junitxml={report}",
                   "-o", "junit_family=xunit1", *pytest_args, *runnable]
        env = {**os.environ, "TQDM_DISABLE": "1"}
        code = subprocess.run(command, cwd=ROOT, env=env, check=False).returncode if runnable else 5
        results = _results(report)

    print()
    width = max(len(name) for name in chosen)
    passed = failed = 0
    for name in chosen:
        drill = DRILLS[name]
        ran: dict[str, str] = {}
        bad: list[str] = []
        for node in drill.tests:
            mine = {n: o for n, o in results.items() if _matches(node, n)}
            if not mine:
                bad.append(f"{node} (did not run{'' if node_exists(node) else ': no such test'})")
            ran.update(mine)
        bad.extend(f"{n} ({o})" if o != "failed" else n for n, o in ran.items() if o != PASSED)
        ok = not bad
        passed, failed = passed + ok, failed + (not ok)
        count = len(ran)
        print(f"{name:<{width}}  {'passed' if ok else 'failed'}  {count:3d} test{'s' if count != 1 else ' '}  "
              f"{drill.goal}")
        for line in bad:
            print(f"{'':<{width}}  failed: {line}")
    print(f"drills: {passed} passed, {failed} failed")
    if failed == 0 and code not in (0, 5):
        print(f"drills: pytest exited with {code}")
        return code
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
