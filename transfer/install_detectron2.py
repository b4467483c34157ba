#!/usr/bin/env python
"""Make the real detectron2 importable in a Python environment, with no GitHub access.

Usage:
    python transfer/install_detectron2.py [--python PATH] [--cache-dir DIR] [--force]

Route (transfer/README.md, "Installing detectron2"):
  1. If ``import detectron2`` already works in the target interpreter (a user's own build),
     it is used unchanged; only missing runtime dependencies are installed.
  2. Otherwise PyPI's ``sal-detectron2==0.7.2`` wheel (upstream detectron2 at commit a59f056
     with trivial edits, shipped with a cp310 CUDA ``_C`` extension) is downloaded into
     ``.cache/detectron2/`` and rewritten into a pure-Python ``py3-none-any`` wheel:
     the compiled ``_C`` and the bundled top-level ``tools`` package are dropped, the
     ``numpy<2`` pin and the optional ``black`` requirement are removed, and ``model_zoo.py``
     no longer needs ``pkg_resources``.
     Without ``_C`` detectron2 takes RoIAlign/NMS from torchvision and COCOeval from
     pycocotools; rotated-box ops, deformable convolution (except torchvision's CPU forward)
     and the fast C++ COCO evaluator are unavailable (see transfer/README.md).
     The downloaded wheel's sha256 must equal ``SAL_WHEEL_SHA256`` (checked before the rewrite).
  3. The runtime dependencies are installed with pip (torch/torchvision/numpy/Pillow held at
     their installed versions), then the rewritten wheel with ``--no-deps``.

No detectron2 wheel or source is committed to this repository. A second run is a no-op.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import re
import subprocess
import sys
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SAL_VERSION = "0.7.2"
SAL_WHEEL = f"sal_detectron2-{SAL_VERSION}-cp310-none-any.whl"
PURE_WHEEL = f"sal_detectron2-{SAL_VERSION}-py3-none-any.whl"
# sha256 of the PyPI file SAL_WHEEL (downloaded twice, 2026-11-25 and 2026-11-28, same digest):
# the rewrite only ever starts from these exact bytes.
SAL_WHEEL_SHA256 = "491af0c7f79bdb2d178e46f6cb16a97c4ac968d45c41ea3f6b6435d59bbee561"

# detectron2's runtime dependencies (upstream setup.py, plus what DefaultTrainer/transforms import).
DEPENDENCIES = [
    "fvcore>=0.1.5,<0.1.6",
    "iopath>=0.1.7,<0.1.11",
    "pycocotools>=2.0.2",
    "omegaconf>=2.1,<2.4",
    "hydra-core>=1.1",
    "yacs>=0.1.8",
    "termcolor>=1.1",
    "tabulate",
    "cloudpickle",
    "tensorboard",
    "opencv-python-headless",
    "Pillow>=7.1",
    "matplotlib",
    "tqdm>4.29.0",
    "packaging",
]
# module name -> distribution, to find what is missing next to a user's own detectron2
DEPENDENCY_MODULES = {
    "fvcore": "fvcore>=0.1.5,<0.1.6", "iopath": "iopath>=0.1.7,<0.1.11",
    "pycocotools": "pycocotools>=2.0.2", "omegaconf": "omegaconf>=2.1,<2.4",
    "hydra": "hydra-core>=1.1", "yacs": "yacs>=0.1.8", "termcolor": "termcolor>=1.1",
    "tabulate": "tabulate", "cloudpickle": "cloudpickle", "tensorboard": "tensorboard",
    "cv2": "opencv-python-headless",
}
HELD_AT_INSTALLED_VERSION = ["torch", "torchvision", "numpy", "pillow"]


def log(msg: str) -> None:
    print(f"[install_detectron2] {msg}", flush=True)


def run(cmd: list[str]) -> None:
    log("$ " + " ".join(cmd))
    subprocess.run(cmd, check=True)


def probe(python: str, code: str) -> tuple[bool, str]:
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True)
    return proc.returncode == 0, (proc.stdout if proc.returncode == 0 else proc.stdout + proc.stderr).strip()


def missing_dependency_modules(python: str) -> list[str]:
    code = ("import importlib.util as u\n"
            f"print(' '.join(m for m in {sorted(DEPENDENCY_MODULES)!r} if u.find_spec(m) is None))")
    ok, out = probe(python, code)
    if not ok:
        raise RuntimeError(f"could not query {python}: {out}")
    return out.split()


def constraints_file(python: str, cache: Path) -> Path:
    """A pip constraints file pinning torch & co. at the versions already installed."""
    code = ("import importlib.metadata as m\n"
            f"for d in {HELD_AT_INSTALLED_VERSION!r}:\n"
            "    try: print(f'{d}=={m.version(d)}')\n"
            "    except m.PackageNotFoundError: pass\n")
    ok, out = probe(python, code)
    if not ok:
        raise RuntimeError(f"could not query {python}: {out}")
    path = cache / "constraints.txt"
    path.write_text(out + "\n")
    return path


def pip_install(python: str, requirements: list[str], cache: Path) -> None:
    if requirements:
        constraints = constraints_file(python, cache)
        run([python, "-m", "pip", "install", "--disable-pip-version-check", "-c", str(constraints),
             *requirements])


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def _patch_model_zoo(text: str) -> str:
    """Replace the pkg_resources lookup (removed from setuptools>=81) by a path next to the file."""
    new = text.replace("import pkg_resources\n", "")
    new, n = re.subn(
        r"pkg_resources\.resource_filename\(\s*\"detectron2\.model_zoo\",\s*"
        r"os\.path\.join\(\"configs\", config_path\)\s*\)",
        'os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", config_path)',
        new)
    if n != 1 or "pkg_resources" in new:
        raise RuntimeError("model_zoo.py does not look as expected; cannot remove pkg_resources")
    return new


def check_sha256(path: Path, expected: str = SAL_WHEEL_SHA256) -> None:
    """Raises RuntimeError unless ``path``'s sha256 is ``expected`` (the pinned download)."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != expected:
        raise RuntimeError(f"{path}: sha256 {digest} is not the pinned {expected}; refusing to "
                           "install it (delete the file to download it again)")
    log(f"{path.name}: sha256 {digest} matches the pin")


def rewrite_wheel(src: Path, dst: Path) -> None:
    """Turn sal-detectron2's cp310 wheel into a pure-Python py3-none-any wheel (see module doc)."""
    dist_info = f"sal_detectron2-{SAL_VERSION}.dist-info/"
    records: list[str] = []
    dropped: list[str] = []
    tmp = dst.with_suffix(".tmp")
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            name = info.filename
            if (re.match(r"detectron2/_C[.].*\.(so|pyd)$", name) or name.startswith("tools/")
                    or name == dist_info + "RECORD"):
                dropped.append(name)
                continue
            data = zin.read(name)
            if name == dist_info + "top_level.txt":
                data = b"".join(line for line in data.splitlines(keepends=True)
                                if line.strip() != b"tools")
            elif name == dist_info + "METADATA":
                # numpy<2 is not needed; black is only an optional formatter (LazyConfig.save)
                data = re.sub(rb"Requires-Dist: (numpy<2|black)\r?\n", b"", data)
            elif name == dist_info + "WHEEL":
                data = re.sub(rb"Root-Is-Purelib: \w+", b"Root-Is-Purelib: true", data)
                data = re.sub(rb"Tag: \S+", b"Tag: py3-none-any", data)
            elif name == "detectron2/model_zoo/model_zoo.py":
                data = _patch_model_zoo(data.decode()).encode()
            zout.writestr(name, data)
            records.append(f"{name},{_record_hash(data)},{len(data)}")
        records.append(f"{dist_info}RECORD,,")
        zout.writestr(dist_info + "RECORD", "\n".join(records) + "\n")
    tmp.replace(dst)
    log(f"rewrote wheel -> {dst} (dropped {len(dropped) - 1} files: compiled _C, tools/)")


def install(python: str, cache: Path, force: bool) -> None:
    ok, out = probe(python, "import detectron2, os; print(detectron2.__version__, "
                            "os.path.dirname(detectron2.__file__))")
    if ok and not force:
        log(f"detectron2 already importable in {python}: {out}")
        missing = missing_dependency_modules(python)
        if missing:
            log(f"missing detectron2 dependencies: {missing}; installing them")
            pip_install(python, [DEPENDENCY_MODULES[m] for m in missing], cache)
        else:
            log("all dependencies present; nothing to do")
        return
    log(f"detectron2 not importable in {python}; installing it from PyPI's sal-detectron2")
    cache.mkdir(parents=True, exist_ok=True)
    src = cache / SAL_WHEEL
    if not src.exists():
        run([python, "-m", "pip", "download", f"sal-detectron2=={SAL_VERSION}", "--no-deps",
             "--only-binary=:all:", "--python-version", "3.10", "--disable-pip-version-check",
             "-d", str(cache)])
    else:
        log(f"using cached {src}")
    check_sha256(src)
    dst = cache / PURE_WHEEL
    rewrite_wheel(src, dst)
    pip_install(python, DEPENDENCIES, cache)
    run([python, "-m", "pip", "install", "--disable-pip-version-check", "--no-deps",
         "--force-reinstall", str(dst)])
    ok, out = probe(python, "import detectron2.engine, detectron2.model_zoo as z; "
                            "z.get_config_file('Base-RCNN-C4.yaml'); import detectron2; "
                            "print(detectron2.__version__)")
    if not ok:
        raise RuntimeError(f"detectron2 installed but does not import:\n{out}")
    log(f"detectron2 {out} installed into {python}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter to install into (default: the one running this script)")
    parser.add_argument("--cache-dir", type=Path, default=REPO_ROOT / ".cache" / "detectron2")
    parser.add_argument("--force", action="store_true", help="reinstall even if importable")
    args = parser.parse_args(argv)
    try:
        install(args.python, args.cache_dir, args.force)
    except (RuntimeError, subprocess.CalledProcessError) as err:
        log(f"FAILED: {err}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
