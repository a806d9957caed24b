"""Secure aggregation by pairwise masks (Bonawitz et al. 2017), simulated.

Each round every sampled client makes a fresh X25519 key pair and publishes the public key
through the server. Two clients that are neighbours in the round's mask graph derive the same
32-byte seed from their Diffie-Hellman shared secret (HKDF-SHA256); the server, which only
relays public keys, cannot. A client's update is encoded in fixed point as integers modulo
:math:`2^{64}` and, for each neighbour :math:`v`, the mask :math:`\\mathrm{PRG}(s_{uv})` is
added when :math:`u < v` and subtracted otherwise. Every mask appears once with each sign, so
the sum of the masked vectors modulo :math:`2^{64}` is exactly the sum of the encoded updates,
while each masked vector on its own is uniformly distributed.

The mask graph is a random ring in which each client is joined to its ``n_neighbors`` nearest
positions (SecAgg+, Bell et al. 2020), so masking costs :math:`O(K \\log K)` instead of
:math:`O(K^2)` for :math:`K` clients; ``n_neighbors >= K - 1`` gives the complete graph.

Clients that drop after the keys were exchanged leave masks that do not cancel. The survivors
that neighbour a dropped client then reveal the seed they shared with it (in the protocol of
Bonawitz et al. they reveal secret shares of the dropped client's key, which lets the server
compute the same seeds), and the server subtracts those masks. A dropped client's update is
never in the sum, so revealing its pairwise seeds exposes nothing of it. Not simulated: the
self-mask that protects a client whose reply arrives after it was declared dropped, and
protection against a server that lies about who dropped; ``docs/federated.md`` says so.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from chuchun._exceptions import DataError

__all__ = [
    "FRACTION_BITS",
    "KeyPair",
    "decode",
    "derive_seed",
    "encode",
    "mask_graph",
    "masked_update",
    "pair_mask",
    "unmask_correction",
]

#: fixed-point resolution: values are rounded to multiples of 2**-FRACTION_BITS
FRACTION_BITS = 24
_SCALE = float(2 ** FRACTION_BITS)
_LIMIT = 2.0 ** (62 - FRACTION_BITS)


class KeyPair:
    """A client's X25519 key pair for one round."""

    def __init__(self, private: bytes | None = None) -> None:
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        self._private = (X25519PrivateKey.generate() if private is None
                         else X25519PrivateKey.from_private_bytes(private))
        self.public = self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def private_bytes(self) -> bytes:
        """The raw private key, for a client that keeps it between requests on its own node."""
        from cryptography.hazmat.primitives.serialization import (
            Encoding,
            NoEncryption,
            PrivateFormat,
        )

        return self._private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    def shared_secret(self, peer_public: bytes) -> bytes:
        """The X25519 shared secret with the owner of ``peer_public`` (fresh keys each round,
        so revealing it for a dropped peer exposes that round's pair only)."""
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

        return bytes(self._private.exchange(X25519PublicKey.from_public_bytes(peer_public)))

    def shared_seed(self, peer_public: bytes, context: bytes) -> bytes:
        """The 32-byte mask seed this client shares with the owner of ``peer_public``."""
        return derive_seed(self.shared_secret(peer_public), context)


def derive_seed(secret: bytes, context: bytes) -> bytes:
    """HKDF-SHA256 of a pairwise shared secret, bound to ``context`` (round and vector)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"chuchun-secagg-mask/" + context).derive(secret)


def encode(update: np.ndarray) -> np.ndarray:
    """Fixed-point encoding of a float vector as ``uint64`` (two's complement modulo 2**64)."""
    x = np.asarray(update, dtype=np.float64)
    if not np.isfinite(x).all():
        raise DataError("cannot encode a non-finite update for secure aggregation")
    if x.size and float(np.abs(x).max()) >= _LIMIT:
        raise DataError(
            f"update values must stay below {_LIMIT:.3g} in magnitude for the fixed-point "
            f"encoding; got {float(np.abs(x).max()):.3g}"
        )
    return np.rint(x * _SCALE).astype(np.int64).view(np.uint64)


def decode(total: np.ndarray) -> np.ndarray:
    """Inverse of :func:`encode` for a (sum of) encoded vectors."""
    return np.asarray(total, dtype=np.uint64).view(np.int64).astype(np.float64) / _SCALE


def pair_mask(seed: bytes, size: int) -> np.ndarray:
    """The pseudo-random ``uint64`` mask expanded from a pairwise seed."""
    gen = np.random.Generator(np.random.PCG64(int.from_bytes(seed, "little")))
    return gen.integers(0, 2**64, size=size, dtype=np.uint64, endpoint=False)


def mask_graph(clients: Iterable[int], n_neighbors: int, round_seed: int) -> dict[int, list[int]]:
    """Neighbours of each client: a ring in a round-specific random order, each client joined
    to ``n_neighbors // 2`` positions on either side (the complete graph when that covers
    everyone). The graph is public: the server draws it and sends each client its list."""
    ids = sorted(set(int(c) for c in clients))
    k = len(ids)
    if k <= 1:
        return {c: [] for c in ids}
    order = np.random.default_rng(round_seed).permutation(k)
    ring = [ids[j] for j in order]
    half = max(1, n_neighbors // 2)
    if 2 * half >= k - 1:
        return {c: [d for d in ids if d != c] for c in ids}
    out: dict[int, set[int]] = {c: set() for c in ids}
    for pos, c in enumerate(ring):
        for step in range(1, half + 1):
            d = ring[(pos + step) % k]
            out[c].add(d)
            out[d].add(c)
    return {c: sorted(v) for c, v in out.items()}


def masked_update(
    update: np.ndarray, client_id: int, key: KeyPair, neighbours: dict[int, bytes],
    context: bytes,
) -> np.ndarray:
    """Encode ``update`` and add the pairwise masks with each neighbour (id -> public key)."""
    out = encode(update)
    for peer, public in neighbours.items():
        mask = pair_mask(key.shared_seed(public, context), out.size)
        if client_id < peer:
            out += mask
        else:
            out -= mask
    return out


def unmask_correction(
    survivor: int, dropped: int, secret: bytes, context: bytes, size: int
) -> np.ndarray:
    """What to add to the masked sum to cancel the mask ``survivor`` applied for ``dropped``,
    from their revealed pairwise ``secret``."""
    mask = pair_mask(derive_seed(secret, context), size)
    return (np.zeros(size, dtype=np.uint64) - mask) if survivor < dropped else mask
