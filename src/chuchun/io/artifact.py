"""Safe model artifacts.

An artifact is a directory (or a zip file holding the same two members) with

``manifest.json``
    format name and version, chuchun version, model class, hyperparameters, the fingerprint of
    the training data, a description of every fitted attribute, and the SHA-256 of the arrays;
``arrays.npz``
    every array of the fitted state, read back with ``allow_pickle=False``.

Loading never executes code from the file: the class must be a registered chuchun model, the
hyperparameters go through the class's own validation, arrays are plain numeric or string
arrays, and a checksum mismatch, truncation or foreign file raises :class:`ArtifactError`.
Saving is atomic: the artifact is written beside its destination and renamed into place, so a
failed save never leaves half an artifact (and never damages an existing one).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import numbers
import os
import shutil
import tempfile
import zipfile
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from chuchun._exceptions import ArtifactError, ChuchunError
from chuchun.data.vocabulary import Vocabulary

if TYPE_CHECKING:
    from chuchun.models._base import Recommender

__all__ = ["FORMAT_VERSION", "load_model", "read_manifest", "save_model"]

FORMAT_NAME = "chuchun-model"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ARRAYS = "arrays.npz"
_SPARSE = {"csr": sp.csr_matrix, "csc": sp.csc_matrix}


def save_model(model: Recommender, path: str | os.PathLike[str], *, format: str | None = None) -> None:
    """Write a fitted ``model`` to ``path`` atomically.

    Parameters
    ----------
    format : {"dir", "zip"}, optional
        Default: ``"zip"`` when ``path`` ends in ``.zip``, else a directory.
    """
    from chuchun import __version__

    model._check_fitted()
    path = os.fspath(path)
    fmt = format or ("zip" if path.lower().endswith(".zip") else "dir")
    if fmt not in ("dir", "zip"):
        raise ArtifactError(f"format must be 'dir' or 'zip'; got {fmt!r}")
    arrays: dict[str, np.ndarray] = {}
    state: dict[str, Any] = {}
    for name, value in sorted(vars(model).items()):
        if name.endswith("_") and not name.startswith("_"):
            state[name] = _encode(name, value, arrays)
    # a Generator passed as random_state has done its work once fitted: the fitted state holds
    # everything the model needs, so it is saved as None (JSON has no generator)
    params = {k: None if isinstance(v, np.random.Generator) else v
              for k, v in model.get_params().items()}
    _check_json(params, "hyperparameters")
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    payload = buf.getvalue()
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "chuchun_version": __version__,
        "model_class": type(model).__name__,
        "model_qualname": f"{type(model).__module__}.{type(model).__qualname__}",
        "params": params,
        "data_fingerprint": getattr(model, "fingerprint_", None),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "state": state,
        "arrays_sha256": hashlib.sha256(payload).hexdigest(),
    }
    manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True).encode()
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ArtifactError(f"cannot save to {path!r}: directory {parent!r} does not exist")
    if fmt == "zip":
        _write_zip(path, parent, manifest_bytes, payload)
    else:
        _write_dir(path, parent, manifest_bytes, payload)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_zip(path: str, parent: str, manifest: bytes, payload: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".chuchun-", suffix=".zip.tmp", dir=parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED) as zf:
                zf.writestr(MANIFEST, manifest)
                zf.writestr(ARRAYS, payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _write_dir(path: str, parent: str, manifest: bytes, payload: bytes) -> None:
    if os.path.exists(path) and not os.path.isdir(path):
        raise ArtifactError(f"cannot save to {path!r}: a file of that name exists")
    if os.path.isdir(path) and os.listdir(path) and not os.path.exists(
        os.path.join(path, MANIFEST)
    ):
        raise ArtifactError(
            f"refusing to overwrite {path!r}: it is a non-empty directory that is not an artifact"
        )
    tmp = tempfile.mkdtemp(prefix=".chuchun-", suffix=".tmp", dir=parent)
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        for name, data in ((ARRAYS, payload), (MANIFEST, manifest)):
            with open(os.path.join(tmp, name), "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        if os.path.exists(path):
            old = tempfile.mkdtemp(prefix=".chuchun-old-", dir=parent)
            os.rmdir(old)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _encode(name: str, value: Any, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    if isinstance(value, Vocabulary):
        arrays[name] = _plain(name, value.ids)
        return {"type": "vocabulary"}
    if sp.issparse(value):
        m = value.tocsr() if value.format not in _SPARSE else value
        for part in ("data", "indices", "indptr"):
            arrays[f"{name}.{part}"] = _plain(name, getattr(m, part))
        return {"type": "sparse", "format": m.format, "shape": list(m.shape)}
    if isinstance(value, np.ndarray):
        arrays[name] = _plain(name, value)
        return {"type": "array"}
    if isinstance(value, np.generic):
        value = value.item()
    _check_json(value, f"fitted attribute {name!r}")
    return {"type": "json", "value": value}


def _plain(name: str, arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind not in "biufcUSM":
        raise ArtifactError(
            f"cannot save fitted attribute {name!r}: arrays of dtype {arr.dtype} need pickle"
        )
    return np.ascontiguousarray(arr)


def _check_json(value: Any, what: str) -> None:
    def ok(v: Any) -> bool:
        if v is None or isinstance(v, (str, bool)):
            return True
        if isinstance(v, numbers.Real) and not isinstance(v, np.generic):
            return True
        if isinstance(v, (list, tuple)):
            return all(ok(x) for x in v)
        if isinstance(v, dict):
            return all(isinstance(k, str) and ok(x) for k, x in v.items())
        return False

    if not ok(value):
        raise ArtifactError(f"cannot save {what}: {type(value).__name__} is not JSON-serialisable")


def _read_members(path: str) -> tuple[bytes, bytes]:
    try:
        if os.path.isdir(path):
            with open(os.path.join(path, MANIFEST), "rb") as fh:
                manifest = fh.read()
            with open(os.path.join(path, ARRAYS), "rb") as fh:
                payload = fh.read()
            return manifest, payload
        if not os.path.exists(path):
            raise ArtifactError(f"no model artifact at {path!r}")
        with zipfile.ZipFile(path) as zf:
            return zf.read(MANIFEST), zf.read(ARRAYS)
    except ArtifactError:
        raise
    except FileNotFoundError as exc:
        raise ArtifactError(f"{path!r} is not a chuchun artifact: missing {exc.filename}") from None
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise ArtifactError(f"{path!r} is not a readable chuchun artifact: {exc}") from None


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed ``manifest.json`` of an artifact (validated for format and version)."""
    manifest_bytes, _ = _read_members(os.fspath(path))
    return _parse_manifest(os.fspath(path), manifest_bytes)


def _parse_manifest(path: str, raw: bytes) -> dict[str, Any]:
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path!r}: manifest.json is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise ArtifactError(f"{path!r} is not a chuchun model artifact (foreign manifest)")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ArtifactError(
            f"{path!r} has artifact format version {version!r}; this chuchun reads "
            f"version {FORMAT_VERSION}"
        )
    for key, kind in (("model_class", str), ("params", dict), ("state", dict),
                      ("arrays_sha256", str)):
        if not isinstance(manifest.get(key), kind):
            raise ArtifactError(f"{path!r}: manifest field {key!r} is missing or malformed")
    return manifest


def load_model(path: str | os.PathLike[str]) -> Recommender:
    """Load an artifact written by :func:`save_model`.

    Raises
    ------
    ArtifactError
        Missing, truncated, tampered, foreign or unknown-class artifacts.
    """
    from chuchun.models._base import _BUILTIN_PREFIX, _REGISTRY

    path = os.fspath(path)
    manifest_bytes, payload = _read_members(path)
    manifest = _parse_manifest(path, manifest_bytes)
    if hashlib.sha256(payload).hexdigest() != manifest["arrays_sha256"]:
        raise ArtifactError(f"{path!r}: arrays.npz does not match its checksum (truncated or altered)")
    from chuchun.models import _import_all

    _import_all()
    name = manifest["model_class"]
    qualname = manifest.get("model_qualname")
    if isinstance(qualname, str):
        cls = _REGISTRY.get(qualname)
        if cls is None:
            raise ArtifactError(
                f"{path!r}: model class {qualname!r} is not a registered chuchun model (import "
                "the module that defines it before loading)"
            )
    else:  # artifacts written before the qualified name was stored hold built-in models
        builtin = [c for k, c in _REGISTRY.items()
                   if k.startswith(_BUILTIN_PREFIX) and c.__name__ == name]
        if not builtin:
            raise ArtifactError(
                f"{path!r}: model class {name!r} is not a registered chuchun model")
        cls = builtin[0]
    try:
        model = cls(**manifest["params"])
        model._validate_params()
    except ChuchunError as exc:
        raise ArtifactError(f"{path!r}: invalid hyperparameters for {name}: {exc}") from None
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise ArtifactError(f"{path!r}: cannot read arrays.npz ({exc})") from None
    try:
        for attr, spec in manifest["state"].items():
            if not (isinstance(attr, str) and attr.endswith("_") and attr.isidentifier()):
                raise ArtifactError(f"{path!r}: invalid state name {attr!r}")
            setattr(model, attr, _decode(attr, spec, arrays))
    except KeyError as exc:
        raise ArtifactError(f"{path!r}: state refers to a missing array {exc}") from None
    return model


def _decode(name: str, spec: Any, arrays: dict[str, np.ndarray]) -> Any:
    kind = spec.get("type") if isinstance(spec, dict) else None
    if kind == "json":
        return spec.get("value")
    if kind == "array":
        return arrays[name]
    if kind == "vocabulary":
        return Vocabulary(arrays[name])
    if kind == "sparse":
        fmt = spec.get("format")
        if fmt not in _SPARSE:
            raise ArtifactError(f"unknown sparse format {fmt!r} for {name!r}")
        shape = tuple(int(x) for x in spec["shape"])
        try:
            return _SPARSE[fmt](
                (arrays[f"{name}.data"], arrays[f"{name}.indices"], arrays[f"{name}.indptr"]),
                shape=shape,
            )
        except ValueError as exc:
            raise ArtifactError(f"corrupt sparse matrix {name!r}: {exc}") from None
    raise ArtifactError(f"unknown state type {kind!r} for {name!r}")
