"""The GGUF → safetensors cache key and its guards (the conversion itself runs in the
MLX and vLLM end-to-end tests, on the embedded model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from companion.backends import convert
from companion.backends.base import BackendError


def test_the_key_follows_the_content_not_the_place(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPANION_CACHE_DIR", str(tmp_path / "cache"))
    one, two = tmp_path / "a", tmp_path / "b"
    one.mkdir()
    two.mkdir()
    (one / "m.gguf").write_bytes(b"GGUF" + bytes(range(256)) * 9000)
    (two / "m.gguf").write_bytes(b"GGUF" + bytes(range(256)) * 9000)
    assert convert.converted_dir(one / "m.gguf") == convert.converted_dir(two / "m.gguf")
    assert convert.converted_dir(one / "m.gguf").parent == tmp_path / "cache" / "converted"
    (two / "m.gguf").write_bytes(b"GGUF" + bytes(range(256)) * 9000 + b"!")
    assert convert.converted_dir(one / "m.gguf") != convert.converted_dir(two / "m.gguf")


def test_a_folder_counts_only_when_complete(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert not convert.is_converted(folder)
    (folder / convert.MARKER).write_text("done")
    assert convert.is_converted(folder)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="no such GGUF file"):
        convert.ensure_safetensors(tmp_path / "nothing.gguf")


def test_an_unreadable_gguf_is_a_clear_error(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("transformers")
    monkeypatch.setenv("COMPANION_CACHE_DIR", str(tmp_path / "cache"))
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf file at all")
    with pytest.raises(BackendError, match=r"could not convert broken\.gguf"):
        convert.ensure_safetensors(broken)
    assert not any((tmp_path / "cache" / "converted").glob("broken*"))
