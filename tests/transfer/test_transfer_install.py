"""transfer/install_detectron2.py: the wheel rewrite (no network; uses the cached download)."""
import base64
import hashlib
import zipfile

import pytest

import install_detectron2 as inst


def test_model_zoo_patch_removes_pkg_resources():
    source = ('import os\nimport pkg_resources\nimport torch\n\n'
              'def get_config_file(config_path):\n'
              '    cfg_file = pkg_resources.resource_filename(\n'
              '        "detectron2.model_zoo", os.path.join("configs", config_path)\n    )\n')
    patched = inst._patch_model_zoo(source)
    assert "pkg_resources" not in patched
    assert 'os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", config_path)' in patched
    with pytest.raises(RuntimeError, match="model_zoo.py"):
        inst._patch_model_zoo("import pkg_resources\nx = pkg_resources.other()\n")


def test_rewritten_wheel_is_pure_python_and_consistent(tmp_path):
    cached = inst.REPO_ROOT / ".cache" / "detectron2" / inst.SAL_WHEEL
    if not cached.exists():
        pytest.skip(f"{cached} not downloaded (install_detectron2.py downloads it)")
    out = tmp_path / inst.PURE_WHEEL
    inst.rewrite_wheel(cached, out)
    dist_info = f"sal_detectron2-{inst.SAL_VERSION}.dist-info/"
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        assert not [n for n in names if n.startswith("tools/") or "/_C." in n]
        assert "Tag: py3-none-any" in z.read(dist_info + "WHEEL").decode()
        assert "Root-Is-Purelib: true" in z.read(dist_info + "WHEEL").decode()
        requires = [line for line in z.read(dist_info + "METADATA").decode().splitlines()
                    if line.startswith("Requires-Dist:") and "extra ==" not in line]
        assert "Requires-Dist: Pillow>=7.1" in requires
        assert not [r for r in requires if "numpy" in r or "black" in r]
        assert z.read(dist_info + "top_level.txt").decode().split() == ["detectron2"]
        assert b"pkg_resources" not in z.read("detectron2/model_zoo/model_zoo.py")
        records = [line.split(",") for line in z.read(dist_info + "RECORD").decode().splitlines()]
        assert {r[0] for r in records} == set(names)
        for name, digest, size in records:
            if name != dist_info + "RECORD":
                data = z.read(name)
                expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
                assert digest == "sha256=" + expected.decode() and int(size) == len(data)
