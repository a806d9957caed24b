"""The one artifact format: ``manifest.json`` plus ``arrays.npz``, never pickle."""

from chuchun.io.artifact import FORMAT_VERSION, load_model, read_manifest, save_model

__all__ = ["FORMAT_VERSION", "load_model", "read_manifest", "save_model"]
