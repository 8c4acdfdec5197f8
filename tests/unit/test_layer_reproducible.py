"""The layer's RECORD files list only what the layer holds (infra.artifacts.prune_records), fast and offline.

tests/infra/test_infra_layer.py builds the real layer twice to check the builds are byte-identical.
"""

from __future__ import annotations

from pathlib import Path

from infra import artifacts


def _installed(site: Path) -> Path:
    """A distribution as pip --target leaves it: a console script recorded outside site/, CRLF lines."""
    (site / "pkg" / "data").mkdir(parents=True)
    (site / "pkg" / "__init__.py").write_text("")
    (site / "pkg" / "data" / "big.bin").write_bytes(b"x")
    info = site / "pkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Name: pkg\n")
    lines = [
        "../../bin/tool.py,sha256=depends-on-the-interpreter-path,1705",
        "pkg-1.0.dist-info/METADATA,sha256=abc,10",
        "pkg-1.0.dist-info/RECORD,,",
        '"pkg/__init__.py",sha256=def,0',
        "pkg/data/big.bin,sha256=ghi,1",
    ]
    record = info / "RECORD"
    record.write_bytes("".join(f"{line}\r\n" for line in lines).encode())
    return record


def test_only_lines_of_files_in_the_layer_stay_byte_for_byte(tmp_path: Path) -> None:
    # Given an installed distribution whose console script and data were pruned
    site = tmp_path / "python"
    record = _installed(site)
    (site / "pkg" / "data" / "big.bin").unlink()

    # When its RECORD is pruned
    artifacts.prune_records(site)

    # Then the script's line (outside the layer) and the pruned file's line are gone, the rest
    # kept as written (quotes and CRLF endings included)
    assert record.read_bytes() == (
        b'pkg-1.0.dist-info/METADATA,sha256=abc,10\r\npkg-1.0.dist-info/RECORD,,\r\n"pkg/__init__.py",sha256=def,0\r\n'
    )


def test_pruning_twice_changes_nothing(tmp_path: Path) -> None:
    # Given a RECORD pruned once
    site = tmp_path / "python"
    record = _installed(site)
    artifacts.prune_records(site)
    once = record.read_bytes()

    # When it is pruned again
    artifacts.prune_records(site)

    # Then it is the same
    assert record.read_bytes() == once


def test_a_script_recorded_by_another_interpreter_path_leaves_no_trace(tmp_path: Path) -> None:
    # Given the same distribution installed by interpreters at paths of different lengths
    records = []
    for folder, digest in (("a", "short"), ("b" * 80, "long-path-digest")):
        record = _installed(tmp_path / folder / "python")
        record.write_bytes(record.read_bytes().replace(b"depends-on-the-interpreter-path", digest.encode()))
        artifacts.prune_records(tmp_path / folder / "python")
        records.append(record.read_bytes())

    # Then their RECORDs are identical
    assert records[0] == records[1]
