"""The models a service holds: loading artifacts read-only, labels, model cards, atomic swaps.

A :class:`ModelRegistry` maps names to :class:`ServedModel` snapshots. A request looks its model
up once and keeps that snapshot to the end, so a reload that swaps a name to a new snapshot
never changes the model under a request in flight: the old one finishes on the old model and is
freed when the last such request ends.
"""

from __future__ import annotations

import csv
import gzip
import datetime as _dt
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chuchun._exceptions import ArtifactError, ConfigError, DataError
from chuchun.io import load_model, read_manifest
from chuchun.models._base import Recommender

__all__ = ["ModelRegistry", "ServedModel", "read_labels"]

log = logging.getLogger(__name__)


def read_labels(path: str | os.PathLike[str]) -> dict[str, str]:
    """Item labels from a CSV file (optionally gzip-compressed) with an id and a label column.

    The id column is the first of ``item``, ``id``, ``item_id``, ``movieId`` present (else the
    first column); the label column the first of ``label``, ``title``, ``name`` (else the second
    column). Keys are the ids as text, so they match integer and string ids alike.
    """
    path = os.fspath(path)
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None or len(header) < 2:
                raise DataError(
                    f"labels file {path!r} needs a header with an id and a label column; "
                    f"got {header!r}"
                )
            lower = [h.strip().lower() for h in header]
            id_col = _first_of(lower, ("item", "id", "item_id", "movieid"), 0)
            label_col = _first_of(lower, ("label", "title", "name"), 1 if id_col != 1 else 0)
            labels: dict[str, str] = {}
            for row in reader:
                if len(row) > max(id_col, label_col):
                    labels[row[id_col].strip()] = row[label_col]
    except OSError as exc:
        raise DataError(f"cannot read labels file {path!r}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError) as exc:
        raise DataError(f"labels file {path!r} is not UTF-8 CSV text ({exc})") from None
    return labels


def _first_of(columns: list[str], names: tuple[str, ...], default: int) -> int:
    for name in names:
        if name in columns:
            return columns.index(name)
    return default


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


@dataclass
class ServedModel:
    """One loaded artifact, immutable once built (a reload builds a new one)."""

    name: str
    path: str
    model: Recommender
    manifest: dict[str, Any]
    version: int
    loaded_at: str
    labels: dict[str, str] = field(default_factory=dict)
    index: Any = None  # an ANN index (chuchun.serve.ann.FactorIndex) or None for exact search
    view: Any = None  # the serving view (chuchun.serve._view.ServingView) of exact search, or None
    _search_text: list[str] | None = field(default=None, repr=False)

    def label(self, item_id: Any) -> str:
        """The item's label, ``""`` when none is known."""
        return self.labels.get(str(_plain(item_id)), "")

    def search_items(self, query: str, limit: int) -> list[dict[str, Any]]:
        """Items whose label (or id) contains ``query`` (case-insensitive), most popular first."""
        model = self.model
        ids = model.items_.ids
        q = query.casefold().strip()
        if self._search_text is None:
            self._search_text = [
                f"{self.labels.get(str(_plain(i)), '')} {_plain(i)}".casefold() for i in ids
            ]
        hits = np.fromiter((j for j, t in enumerate(self._search_text) if q in t), dtype=np.int64)
        pop = np.asarray(model.item_popularity_)[hits]
        order = hits[np.lexsort((hits, -pop))][:limit]
        return [{"item": _plain(ids[j]), "label": self.label(ids[j]),
                 "popularity": float(model.item_popularity_[j])} for j in order]

    def card(self) -> dict[str, Any]:
        """What the model is: class, parameters (with their declarations), data, training."""
        model = self.model
        cls = type(model)
        specs = cls.param_specs()
        params = {
            name: {
                "value": value,
                "default": specs[name].default,
                "doc": specs[name].doc,
                "expected": specs[name].expected(),
            }
            for name, value in model.get_params().items()
        }
        doc = (cls.__doc__ or "").strip().split("\n\n")[0]
        return {
            "name": self.name,
            "class": cls.__name__,
            "summary": " ".join(doc.split()),
            "version": self.version,
            "params": params,
            "data_fingerprint": self.manifest.get("data_fingerprint"),
            "n_users": len(model.users_),
            "n_items": len(model.items_),
            "trained_at": self.manifest.get("created"),
            "loaded_at": self.loaded_at,
            "chuchun_version": self.manifest.get("chuchun_version"),
            "predicts_ratings": bool(cls.predicts_ratings),
            "supports_fold_in": bool(cls.supports_fold_in),
            "has_similar_items": bool(cls.has_similar_items()),
            "explain_method": cls.explain_method,
            "explain_is_additive": bool(cls.explain_is_additive),
            "index": "ann" if self.index is not None else "exact",
            "example_users": [_plain(u) for u in model.users_.ids[:10]],
            "labels": len(self.labels),
            "evaluation": _evaluation(model, self.manifest),
        }


def _evaluation(model: Recommender, manifest: Mapping[str, Any]) -> dict[str, Any] | None:
    """Evaluation numbers the artifact carries (a ``metrics_`` attribute or manifest field)."""
    for value in (getattr(model, "metrics_", None), getattr(model, "evaluation_", None),
                  manifest.get("evaluation"), manifest.get("metrics")):
        if isinstance(value, Mapping) and value:
            return {str(k): _plain(v) for k, v in value.items()}
    return None


class ModelRegistry:
    """Named models; :meth:`get` is lock-free, :meth:`reload` swaps one name atomically."""

    def __init__(
        self,
        paths: Mapping[str, str],
        *,
        labels: Mapping[str, str] | None = None,
        index: str = "exact",
        ann_options: Mapping[str, Any] | None = None,
        serving_views: bool = True,
    ) -> None:
        if not paths:
            raise ConfigError("the service needs at least one model artifact")
        if index not in ("exact", "ann"):
            raise ConfigError(f"index must be 'exact' or 'ann'; got {index!r}")
        self.paths = dict(paths)
        self.extra_labels = dict(labels or {})
        self.index_kind = index
        self.ann_options = dict(ann_options or {})
        self.serving_views = serving_views
        self._models: dict[str, ServedModel] = {}
        self._versions: dict[str, int] = {}
        self._lock = threading.Lock()  # serialises loads; readers never take it

    def load_all(self) -> None:
        """Load every configured artifact (any failure is an error: nothing is served half)."""
        for name in self.paths:
            self.reload(name)

    @property
    def ready(self) -> bool:
        return len(self._models) == len(self.paths)

    def names(self) -> list[str]:
        return list(self._models)

    def get(self, name: str) -> ServedModel | None:
        return self._models.get(name)

    def snapshot(self) -> dict[str, ServedModel]:
        return dict(self._models)

    def reload(self, name: str) -> ServedModel:
        """Load ``name``'s artifact again and swap it in; on failure the old model stays.

        Raises
        ------
        ConfigError
            ``name`` is not a configured model.
        ArtifactError
            The artifact cannot be loaded (the reason is in the message).
        """
        if name not in self.paths:
            raise ConfigError(f"no model named {name!r}; models are {sorted(self.paths)}")
        path = self.paths[name]
        with self._lock:
            served = self._build(name, path, self._versions.get(name, 0) + 1)
            self._versions[name] = served.version
            models = dict(self._models)
            models[name] = served
            self._models = models  # one reference assignment: readers see old or new, whole
        log.info("loaded model %r version %d from %s", name, served.version, path)
        return served

    def _build(self, name: str, path: str, version: int) -> ServedModel:
        try:
            manifest = read_manifest(path)
            model = load_model(path)
        except ArtifactError:
            raise
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"cannot load {path!r}: {exc}") from None
        labels: dict[str, str] = {}
        carried = getattr(model, "item_labels_", None)
        if carried is not None:
            ids = model.items_.ids
            if len(carried) == len(ids):
                labels = {str(_plain(i)): str(t) for i, t in zip(ids, carried, strict=True)}
        labels.update(self.extra_labels)
        index = None
        if self.index_kind == "ann":
            from chuchun.serve.ann import FactorIndex

            try:
                index = FactorIndex.build(model, **self.ann_options)
            except ConfigError as exc:
                raise ArtifactError(f"{path!r}: {exc}") from None
        view = None
        if self.serving_views and index is None:
            from chuchun.serve._view import build_view

            view = build_view(model, name, version, labels)
        return ServedModel(
            name=name, path=path, model=model, manifest=manifest, version=version,
            loaded_at=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            labels=labels, index=index, view=view,
        )
