"""Small dense helpers used inside the compiled row solvers (ALS half-steps, BPR steps):
an in-place Cholesky solve and a software prefetch of a factor row."""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["cholesky_solve", "prefetch", "prefetch1", "prefetch_row"]


def _prefetch_codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
    aryty = signature.args[0]
    ary = context.make_array(aryty)(context, builder, args[0])
    inds = [context.cast(builder, v, t, types.intp)
            for v, t in zip(args[1:], signature.args[1:], strict=True)]
    ptr = cgutils.get_item_pointer2(
        context, builder, data=ary.data, shape=cgutils.unpack_tuple(builder, ary.shape),
        strides=cgutils.unpack_tuple(builder, ary.strides), layout=aryty.layout, inds=inds,
        wraparound=False, boundscheck=False,
    )
    i8p = ir.IntType(8).as_pointer()
    i32 = ir.IntType(32)
    fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
    fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
    # read access, high temporal locality, data cache
    builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
    return context.get_dummy_value()


@intrinsic
def prefetch(typingctx, arr, row, col):  # type: ignore[no-untyped-def]  # pragma: no cover
    """Hint the CPU to load the cache line holding ``arr[row, col]`` (a 2-d array).

    A row solver walks the rows of a factor table in the order of a sparse row's indices, a
    random gather the hardware prefetcher cannot predict; issuing the loads a few entries
    ahead overlaps their latency with the arithmetic on the current entry. No effect on
    results; a prefetch never faults, whatever the address.
    """
    if not isinstance(arr, types.Array) or arr.ndim != 2:
        return None
    return types.void(arr, row, col), _prefetch_codegen


@intrinsic
def prefetch1(typingctx, arr, k):  # type: ignore[no-untyped-def]  # pragma: no cover
    """:func:`prefetch` of ``arr[k]`` for a 1-d array."""
    if not isinstance(arr, types.Array) or arr.ndim != 1:
        return None
    return types.void(arr, k), _prefetch_codegen


@numba.njit(inline="always", cache=True)
def prefetch_row(Y, i):  # pragma: no cover - compiled
    """Prefetch every 64-byte line of the float32 row ``Y[i]``."""
    for c in range(0, Y.shape[1], 16):
        prefetch(Y, i, c)


@numba.njit(cache=True, nogil=True)
def cholesky_solve(A, rhs, n, min_pivot, floor):  # pragma: no cover - compiled
    """Solve ``A x = rhs`` for a symmetric positive-definite ``A`` in place.

    Only the lower triangle of ``A[:n, :n]`` is read; it is overwritten with the Cholesky factor
    ``L`` (``A = L L^T``) and ``rhs[:n]`` with the solution. A pivot not above ``min_pivot``
    (a numerically singular system) is replaced by ``floor`` instead of failing.
    """
    for j in range(n):
        s = A[j, j]
        for c in range(j):
            s -= A[j, c] * A[j, c]
        s = np.sqrt(s) if s > min_pivot else floor
        A[j, j] = s
        for a in range(j + 1, n):
            t = A[a, j]
            for c in range(j):
                t -= A[a, c] * A[j, c]
            A[a, j] = t / s
    for a in range(n):  # forward substitution: L y = rhs
        t = rhs[a]
        for c in range(a):
            t -= A[a, c] * rhs[c]
        rhs[a] = t / A[a, a]
    for a in range(n - 1, -1, -1):  # backward substitution: L^T x = y
        t = rhs[a]
        for c in range(a + 1, n):
            t -= A[c, a] * rhs[c]
        rhs[a] = t / A[a, a]
