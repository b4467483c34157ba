"""ssl/ is the source root; an ssl/__init__.py would shadow the standard library.

README section "Why `ssl/` has no `__init__.py`" explains it; ``test_readme_explains_the_rule`` keeps that
section and this test pointing at each other.
"""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_no_init_in_ssl_source_root():
    assert (ROOT / "ssl" / "hallucinator").is_dir()
    assert not (ROOT / "ssl" / "__init__.py").exists(), "ssl/__init__.py shadows the stdlib ssl module"


def test_stdlib_ssl_and_torch_import_from_repo_root():
    code = ("import ssl, torch; ssl.create_default_context(); "
            "assert hasattr(ssl, 'SSLWantReadError'), ssl.__file__; print(ssl.__file__)")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert str(ROOT / "ssl") not in res.stdout


def test_readme_explains_the_rule():
    readme = (ROOT / "README.md").read_text()
    assert "an `ssl/__init__.py` would shadow Python's `ssl` module" in readme
    assert "tests/lib/test_ssl_shadowing.py" in readme
