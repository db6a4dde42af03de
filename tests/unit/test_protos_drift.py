"""The committed generated code (shop/, buf/) is exactly what protos/generate.sh produces."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ("shop", "buf")


def _files(base: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(base)): path.read_bytes()
        for top in GENERATED
        for path in sorted((base / top).rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_committed_code_matches_regenerated(tmp_path: Path) -> None:
    """Regenerating from protos/ into a fresh directory gives byte-identical files
    (run `make gen` and commit after changing a .proto)."""
    subprocess.run(
        ["bash", str(ROOT / "protos/generate.sh"), str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "VENV_BIN": str(Path(sys.executable).parent)},
    )
    fresh, committed = _files(tmp_path), _files(ROOT)
    assert sorted(fresh) == sorted(committed), "generated file set differs: run `make gen`"
    stale = [name for name, data in fresh.items() if committed[name] != data]
    assert not stale, f"stale generated files (run `make gen`): {stale}"


def test_generation_is_deterministic(tmp_path: Path) -> None:
    """Two generations in a row produce identical bytes, descriptor set included."""
    for name in ("a", "b"):
        subprocess.run(
            ["bash", str(ROOT / "protos/generate.sh"), str(tmp_path / name)],
            check=True,
            capture_output=True,
            timeout=120,
            env={"PATH": "/usr/bin:/bin", "VENV_BIN": str(Path(sys.executable).parent)},
        )
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
