"""The committed gRPC code is exactly what ``make proto`` generates from ``proto/``."""

from __future__ import annotations

from pathlib import Path

from serving import proto_gen


def test_generated_code_matches_proto_sources(tmp_path: Path) -> None:
    proto_gen.generate(tmp_path)
    names = proto_gen.generated_names()
    assert names, "no .proto sources found"
    stale = [
        name
        for name in names
        if not (proto_gen.REPO_ROOT / proto_gen.PROTO_DIR / name).exists()
        or (proto_gen.REPO_ROOT / proto_gen.PROTO_DIR / name).read_bytes()
        != (tmp_path / proto_gen.PROTO_DIR / name).read_bytes()
    ]
    assert not stale, f"generated code is stale, run `make proto`: {stale}"


def test_staleness_is_detected(tmp_path: Path) -> None:
    # A copy of the sources with one extra field must generate different code.
    src = tmp_path / "src"
    (src / proto_gen.PROTO_DIR).mkdir(parents=True)
    for proto in proto_gen.proto_files():
        text = (proto_gen.REPO_ROOT / proto).read_text()
        if proto.name == "events.proto":
            text = text.replace("  string region = 10;", "  string region = 10;\n  string x = 11;")
        (src / proto).write_text(text)
    out = tmp_path / "out"
    proto_gen.generate(out, root=src)
    committed = (proto_gen.REPO_ROOT / proto_gen.PROTO_DIR / "events_pb2.py").read_bytes()
    assert (out / proto_gen.PROTO_DIR / "events_pb2.py").read_bytes() != committed
