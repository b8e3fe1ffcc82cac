"""remote/jupyter_launch.py: an entry point run through it behaves as when run itself, and a deferred module
is imported only when something calls into it, then answers exactly as the real one.

A stand-in `rfc3987_syntax` (it writes a file when its body runs) shows when the import really happens; the
real jsonschema and rfc3987_syntax from the tests' wheelhouse show that validation answers are unchanged.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

LAUNCH = Path(__file__).resolve().parents[2] / "remoteenv" / "remote" / "jupyter_launch.py"

SLOW_MODULE = """\
import os
open(os.environ["LOADED_MARK"], "a").write("loaded\\n")

def is_valid_syntax(term, value):
    return term == "iri" and ":" in value

def parse(term, value):
    return (term, value)
"""


def run(tmp_path: Path, body: str, *extra: str, through_launcher: bool = True) -> subprocess.CompletedProcess:
    script = tmp_path / "bin" / "entry"
    script.parent.mkdir(exist_ok=True)
    script.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    script.chmod(0o755)
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "lib"), "LOADED_MARK": str(tmp_path / "mark")}
    argv = [sys.executable, str(LAUNCH), str(script), *extra] if through_launcher else [str(script), *extra]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def slow(tmp_path: Path) -> Path:
    package = tmp_path / "lib" / "rfc3987_syntax"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(SLOW_MODULE)
    return tmp_path


def loads(tmp_path: Path) -> int:
    mark = tmp_path / "mark"
    return len(mark.read_text().splitlines()) if mark.exists() else 0


def test_importing_a_deferred_module_runs_none_of_it_until_a_call(slow):
    proc = run(slow, """\
        import json, os, sys
        from rfc3987_syntax import is_valid_syntax
        before = os.path.exists(os.environ["LOADED_MARK"])
        answers = [is_valid_syntax("iri", "http://x/"), is_valid_syntax("iri", "no colon"), is_valid_syntax("x", "a:b")]
        print(json.dumps({"before": before, "answers": answers}))
        """)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"before": False, "answers": [True, False, False]}
    assert loads(slow) == 1  # loaded once, on the first call, not again for the later ones


def test_other_names_load_the_real_module_and_later_imports_get_it(slow):
    proc = run(slow, """\
        import rfc3987_syntax, sys
        print(rfc3987_syntax.parse("iri", "v"))
        import rfc3987_syntax as again
        print(again.parse is sys.modules["rfc3987_syntax"].parse, hasattr(again, "__deferred__"))
        """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["('iri', 'v')", "True False"]
    assert loads(slow) == 1


def test_a_missing_module_stays_an_import_error(tmp_path):
    proc = run(tmp_path, """\
        try:
            import rfc3987_syntax
        except ImportError:
            print("missing")
        """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "missing\n"


def test_the_script_runs_as_itself(slow):
    body = """\
        import os, sys
        print(__name__, sys.argv, sys.path[0] == os.path.dirname(os.path.abspath(__file__)))
        sys.exit(7)
        """
    launched = run(slow, body, "--port=0", "a b")
    direct = run(slow, body, "--port=0", "a b", through_launcher=False)
    assert (launched.returncode, launched.stdout) == (direct.returncode, direct.stdout) == (7, direct.stdout)
    assert direct.stdout.startswith("__main__ [") and "'--port=0', 'a b'] True" in direct.stdout


def test_a_script_that_is_not_python_is_executed_as_it_is(tmp_path):
    script = tmp_path / "entry"
    script.write_text('#!/bin/sh\necho "shell: $*"\n')
    script.chmod(0o755)
    proc = subprocess.run([sys.executable, str(LAUNCH), str(script), "x", "y"], capture_output=True, text=True)
    assert (proc.returncode, proc.stdout) == (0, "shell: x y\n")


REAL_CHECK = """\
import json, sys
from jsonschema import Draft7Validator, FormatChecker
deferred = "rfc3987_syntax.syntax_helpers" not in sys.modules
values = ["http://example.com/ü?q=1#f", "not an iri", "//host/path", "", "a:b", "http://[::1]:80/"]
checker = FormatChecker()
out = {fmt: [checker.conforms(v, fmt) for v in values] for fmt in ("iri", "iri-reference")}
print(json.dumps({"deferred_at_import": deferred, "answers": out}))
"""


def test_real_jsonschema_answers_the_same_through_the_launcher(tmp_path):
    """With the real jsonschema and rfc3987_syntax (a venv from the wheelhouse): the Lark parsers are not
    built at import, and every iri answer equals the one without the launcher."""
    import wheelhouse

    house = wheelhouse.wheelhouse_or_skip()
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(venv)], check=True)
    target = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    wheels = [str(p) for p in house.glob("*.whl")
              if p.name.split("-")[0].lower() in {"jsonschema", "rfc3987_syntax", "lark", "attrs", "referencing",
                                                  "rpds_py", "jsonschema_specifications", "typing_extensions"}]
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target",
                          str(target), *wheels], capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr
    script = tmp_path / "check.py"
    script.write_text(REAL_CHECK)
    python = str(venv / "bin" / "python")
    direct = subprocess.run([python, str(script)], capture_output=True, text=True, timeout=120)
    launched = subprocess.run([python, str(LAUNCH), str(script)], capture_output=True, text=True, timeout=120)
    assert direct.returncode == launched.returncode == 0, direct.stderr + launched.stderr
    plain, through = json.loads(direct.stdout), json.loads(launched.stdout)
    assert plain["deferred_at_import"] is False  # without it, importing jsonschema built the parsers
    assert through["deferred_at_import"] is True
    assert through["answers"] == plain["answers"]
    assert plain["answers"]["iri"][:2] == [True, False]  # the real validator ran, not a stub's answer
