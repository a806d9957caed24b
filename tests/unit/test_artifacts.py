from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest

import chuchun
from chuchun import ArtifactError, NotFittedError
from chuchun.io import read_manifest
from chuchun.models import BaselineOnly, Popularity
from chuchun.testing import block_interactions


@pytest.fixture(scope="module")
def fitted():
    return BaselineOnly().fit(block_interactions())


def test_round_trip_dir_and_zip(fitted, tmp_path):
    for name in ("m", "m.zip"):
        path = tmp_path / name
        fitted.save(path)
        loaded = chuchun.load(path)
        assert isinstance(loaded, BaselineOnly)
        np.testing.assert_array_equal(loaded.item_bias_, fitted.item_bias_)
        assert loaded.users_ == fitted.users_
        manifest = read_manifest(path)
        assert manifest["model_class"] == "BaselineOnly"
        assert manifest["data_fingerprint"] == fitted.fingerprint_
        assert manifest["params"] == fitted.get_params()


def test_unfitted_model_cannot_be_saved(tmp_path):
    with pytest.raises(NotFittedError):
        Popularity().save(tmp_path / "m")


def test_overwrite_replaces_atomically(fitted, tmp_path):
    path = tmp_path / "m"
    Popularity().fit(block_interactions()).save(path)
    fitted.save(path)
    assert isinstance(chuchun.load(path), BaselineOnly)
    assert sorted(os.listdir(tmp_path)) == ["m"], "no temporary files may remain"


def test_refuses_to_clobber_a_foreign_directory(fitted, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "precious.txt").write_text("keep me")
    with pytest.raises(ArtifactError, match="refusing to overwrite"):
        fitted.save(tmp_path / "data")
    assert (tmp_path / "data" / "precious.txt").read_text() == "keep me"


def test_failed_save_leaves_nothing(fitted, tmp_path):
    fitted.bad_ = object()  # not serialisable
    try:
        with pytest.raises(ArtifactError, match="bad_"):
            fitted.save(tmp_path / "m")
    finally:
        del fitted.bad_
    assert os.listdir(tmp_path) == []


def test_tampered_arrays_are_rejected(fitted, tmp_path):
    path = tmp_path / "m"
    fitted.save(path)
    raw = bytearray((path / "arrays.npz").read_bytes())
    raw[-40] ^= 0xFF
    (path / "arrays.npz").write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match="checksum"):
        chuchun.load(path)


def test_truncated_zip_is_rejected(fitted, tmp_path):
    path = tmp_path / "m.zip"
    fitted.save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError):
        chuchun.load(path)


def test_foreign_and_unknown_class_rejected(fitted, tmp_path):
    path = tmp_path / "m"
    fitted.save(path)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["model_qualname"] = "os.system"
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="not a registered"):
        chuchun.load(path)
    del manifest["model_qualname"]  # an artifact written before qualified names
    manifest["model_class"] = "os.system"
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="not a registered"):
        chuchun.load(path)
    (path / "manifest.json").write_text('{"format": "something-else"}')
    with pytest.raises(ArtifactError, match="foreign"):
        chuchun.load(path)
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        chuchun.load(path)
    with pytest.raises(ArtifactError, match="no model artifact"):
        chuchun.load(tmp_path / "missing.zip")


def test_pickled_arrays_never_load(fitted, tmp_path):
    """An npz holding an object array (which needs pickle) is refused even with a valid checksum."""
    import hashlib
    import io

    path = tmp_path / "m"
    fitted.save(path)
    buf = io.BytesIO()
    np.savez(buf, item_bias_=np.array([{"x": 1}], dtype=object))
    payload = buf.getvalue()
    (path / "arrays.npz").write_bytes(payload)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["arrays_sha256"] = hashlib.sha256(payload).hexdigest()
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError):
        chuchun.load(path)


def test_zip_member_layout(fitted, tmp_path):
    path = tmp_path / "m.zip"
    fitted.save(path)
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["arrays.npz", "manifest.json"]
