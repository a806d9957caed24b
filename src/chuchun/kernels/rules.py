"""Frequent-itemset mining and rule enumeration loops.

All kernels work on transactions already encoded as item *ranks*: ``0 .. n_items - 1``, every
item frequent, each transaction's ranks sorted ascending and unique, stored as CSR
(``indptr`` int64, ``items`` int32). Rank 0 is the most frequent item, which makes FP-trees
compact (shared prefixes start with common items).

Kernels
-------
``fpgrowth_itemsets``
    FP-growth (Han, Pei & Yin 2000, "Mining frequent patterns without candidate generation",
    SIGMOD, Algorithm 2). The FP-tree is held in flat arrays (item, count, parent) with a hash
    table for child lookup while building; each conditional tree is built from the prefix
    paths of one item, single-path trees are enumerated directly, and the recursion runs on an
    explicit stack.
``apriori_itemsets``
    Apriori (Agrawal & Srikant 1994, "Fast algorithms for mining association rules", VLDB,
    Fig. 1 with the ``apriori-gen`` join and prune). Support counting uses one bitset per item:
    :math:`\\sigma(X) = \\mathrm{popcount}(\\bigwedge_{i \\in X} b_i)`.
``rule_candidates``
    For every frequent itemset :math:`Z` with :math:`|Z| \\ge 2` and every non-empty proper subset
    :math:`A \\subset Z`, the rule :math:`A \\Rightarrow Z \\setminus A` with confidence
    :math:`\\sigma(Z) / \\sigma(A)` and lift :math:`n\\,\\sigma(Z) / (\\sigma(A)\\,\\sigma(Z \\setminus A))`,
    kept when both reach their thresholds. Subset supports come from an open-addressing hash
    table over the itemsets.

Every kernel has a plain-Python twin (``*_python``) with the same inputs and outputs, used by
the property tests. Mining kernels emit itemsets in no particular order; callers sort them.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import types
from numba.typed import List

_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)
_FNV_OFFSET = np.uint64(14695981039346656037)
_FNV_PRIME = np.uint64(1099511628211)


@numba.njit(cache=True, nogil=True)
def _popcount(x):  # pragma: no cover - compiled
    # SWAR bit count; LLVM turns this pattern into a single popcnt instruction.
    x = x - ((x >> np.uint64(1)) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return (x * _H01) >> np.uint64(56)


@numba.njit(cache=True, nogil=True)
def _list_to_arrays(out_items, out_lengths, out_counts):  # pragma: no cover - compiled
    n = len(out_lengths)
    indptr = np.zeros(n + 1, np.int64)
    for k in range(n):
        indptr[k + 1] = indptr[k] + out_lengths[k]
    items = np.empty(len(out_items), np.int32)
    for k in range(len(out_items)):
        items[k] = out_items[k]
    counts = np.empty(n, np.int64)
    for k in range(n):
        counts[k] = out_counts[k]
    return indptr, items, counts


# --------------------------------------------------------------------------------------------
# FP-growth
# --------------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def _build_tree(path_indptr, path_items, path_weights, n_items):  # pragma: no cover - compiled
    """Insert weighted, rank-sorted paths into a fresh FP-tree; node 0 is the root.

    The child of ``node`` labelled ``item`` is found through an open-addressing hash table
    keyed by ``node * n_items + item`` (one probe on average, unlike a scan of the siblings).
    """
    n_paths = path_indptr.shape[0] - 1
    cap = path_items.shape[0] + 1
    node_item = np.empty(cap, np.int32)
    node_count = np.zeros(cap, np.int64)
    node_parent = np.empty(cap, np.int32)
    size = 16
    while size < 2 * cap:
        size *= 2
    table_key = np.full(size, -1, np.int64)
    table_node = np.empty(size, np.int32)
    mask = np.uint64(size - 1)
    node_item[0] = -1
    node_parent[0] = -1
    n_nodes = 1
    for p in range(n_paths):
        w = path_weights[p]
        cur = 0
        for j in range(path_indptr[p], path_indptr[p + 1]):
            it = path_items[j]
            key = np.int64(cur) * n_items + it
            slot = (np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(17) & mask
            while table_key[slot] != -1 and table_key[slot] != key:
                slot = (slot + np.uint64(1)) & mask
            if table_key[slot] == -1:
                child = n_nodes
                n_nodes += 1
                node_item[child] = it
                node_parent[child] = cur
                table_key[slot] = key
                table_node[slot] = child
            else:
                child = table_node[slot]
            node_count[child] += w
            cur = child
    # header table: the nodes of each item, grouped (counting sort by item)
    header_indptr = np.zeros(n_items + 1, np.int64)
    for nd in range(1, n_nodes):
        header_indptr[node_item[nd] + 1] += 1
    for k in range(n_items):
        header_indptr[k + 1] += header_indptr[k]
    header_nodes = np.empty(n_nodes - 1, np.int32)
    fill = header_indptr[:-1].copy()
    for nd in range(1, n_nodes):
        it = node_item[nd]
        header_nodes[fill[it]] = nd
        fill[it] += 1
    return (
        node_item[:n_nodes],
        node_count[:n_nodes],
        node_parent[:n_nodes],
        header_indptr,
        header_nodes,
    )


@numba.njit(cache=True, nogil=True)
def _is_chain(node_parent):  # pragma: no cover - compiled
    # paths are inserted node by node, so a single-path tree has parent[k] == k - 1 throughout
    for nd in range(1, node_parent.shape[0]):
        if node_parent[nd] != nd - 1:
            return False
    return True


@numba.njit(cache=True, nogil=True)
def _emit_chain(
    node_item,
    node_count,
    local_to_global,
    prefix,
    depth,
    max_len,
    max_itemsets,
    out_items,
    out_lengths,
    out_counts,
):  # pragma: no cover - compiled
    """Emit ``prefix[:depth]`` plus each non-empty combination of the chain's nodes; 1 if stopped."""
    length = node_item.shape[0] - 1
    cap = min(length, max_len - depth)
    if cap <= 0:
        return 0
    pos = np.empty(cap, np.int64)
    size = 1
    pos[0] = 0
    while size > 0:
        for d in range(depth):
            out_items.append(prefix[d])
        for q in range(size):
            out_items.append(local_to_global[node_item[pos[q] + 1]])
        out_lengths.append(depth + size)
        out_counts.append(node_count[pos[size - 1] + 1])
        if len(out_lengths) >= max_itemsets:
            return 1
        if size < cap and pos[size - 1] + 1 < length:
            pos[size] = pos[size - 1] + 1
            size += 1
        else:
            while size > 0:
                pos[size - 1] += 1
                if pos[size - 1] < length:
                    break
                size -= 1
    return 0


@numba.njit(cache=True, nogil=True)
def fpgrowth_itemsets(
    indptr, items, n_items, min_count, max_len, max_itemsets
):  # pragma: no cover - compiled
    """Mine all itemsets with support count ``>= min_count`` and at most ``max_len`` items.

    The recursion of FP-growth runs on an explicit stack of conditional trees (numba cannot
    cache recursive functions). A frame holds one tree, the global rank of each of its local
    items, and the next local item to condition on; items are taken least frequent first.

    Parameters
    ----------
    indptr, items : int64 and int32 arrays
        Transactions as CSR over ranks ``0 .. n_items - 1``, sorted ascending within a row.
    n_items, min_count, max_len, max_itemsets : int

    Returns
    -------
    out_indptr, out_items, out_counts, stopped
        The itemsets (CSR of ranks, unsorted within a row), their support counts, and 1 if the
        search stopped at ``max_itemsets`` (0 when complete).
    """
    n_tx = indptr.shape[0] - 1
    out_items = List.empty_list(types.int32)
    out_lengths = List.empty_list(types.int64)
    out_counts = List.empty_list(types.int64)
    if n_items == 0 or max_len < 1 or max_itemsets < 1:
        o_indptr, o_items, o_counts = _list_to_arrays(out_items, out_lengths, out_counts)
        return o_indptr, o_items, o_counts, 0
    weights = np.ones(n_tx, np.int64)
    t_item, t_count, t_parent, t_hptr, t_hnodes = _build_tree(indptr, items, weights, n_items)
    s_item = List.empty_list(types.int32[:])
    s_count = List.empty_list(types.int64[:])
    s_parent = List.empty_list(types.int32[:])
    s_hptr = List.empty_list(types.int64[:])
    s_hnodes = List.empty_list(types.int32[:])
    s_global = List.empty_list(types.int32[:])
    s_next = List.empty_list(types.int64)
    s_depth = List.empty_list(types.int64)
    s_item.append(t_item)
    s_count.append(t_count)
    s_parent.append(t_parent)
    s_hptr.append(t_hptr)
    s_hnodes.append(t_hnodes)
    s_global.append(np.arange(n_items).astype(np.int32))
    s_next.append(n_items - 1)
    s_depth.append(0)
    prefix = np.empty(n_items + 1, np.int32)
    freq = np.zeros(n_items, np.int64)
    new_id = np.empty(n_items, np.int32)
    touched = np.empty(n_items, np.int32)
    stopped = 0
    while len(s_next) > 0:
        top = len(s_next) - 1
        j = s_next[top]
        if j < 0:
            s_item.pop()
            s_count.pop()
            s_parent.pop()
            s_hptr.pop()
            s_hnodes.pop()
            s_global.pop()
            s_next.pop()
            s_depth.pop()
            continue
        s_next[top] = j - 1
        node_item = s_item[top]
        node_count = s_count[top]
        node_parent = s_parent[top]
        header_indptr = s_hptr[top]
        header_nodes = s_hnodes[top]
        local_to_global = s_global[top]
        depth = s_depth[top]
        total = 0
        for h in range(header_indptr[j], header_indptr[j + 1]):
            total += node_count[header_nodes[h]]
        if total < min_count:
            continue
        prefix[depth] = local_to_global[j]
        for d in range(depth + 1):
            out_items.append(prefix[d])
        out_lengths.append(depth + 1)
        out_counts.append(total)
        if len(out_lengths) >= max_itemsets:
            stopped = 1
            break
        if depth + 1 >= max_len or j == 0:
            continue
        # conditional pattern base of j: the prefix paths above each node of j; only the
        # items met on those paths are touched, so the cost does not grow with j
        path_total = 0
        n_touched = 0
        for h in range(header_indptr[j], header_indptr[j + 1]):
            nd = header_nodes[h]
            c = node_count[nd]
            a = node_parent[nd]
            while a > 0:
                it = node_item[a]
                if freq[it] == 0:
                    touched[n_touched] = it
                    n_touched += 1
                freq[it] += c
                path_total += 1
                a = node_parent[a]
        seen = np.sort(touched[:n_touched])
        n_new = 0
        for q in range(n_touched):
            k = seen[q]
            if freq[k] >= min_count:
                new_id[k] = n_new
                n_new += 1
            else:
                new_id[k] = -1
            freq[k] = 0
        if n_new == 0:
            continue
        sub_global = np.empty(n_new, np.int32)
        for q in range(n_touched):
            k = seen[q]
            if new_id[k] >= 0:
                sub_global[new_id[k]] = local_to_global[k]
        n_paths = header_indptr[j + 1] - header_indptr[j]
        p_indptr = np.zeros(n_paths + 1, np.int64)
        p_items = np.empty(path_total, np.int32)
        p_weights = np.empty(n_paths, np.int64)
        pos = 0
        for q in range(n_paths):
            nd = header_nodes[header_indptr[j] + q]
            start = pos
            a = node_parent[nd]
            while a > 0:
                nid = new_id[node_item[a]]
                if nid >= 0:
                    p_items[pos] = nid
                    pos += 1
                a = node_parent[a]
            # walked leaf-to-root (descending rank); the tree wants root-to-leaf
            lo = start
            hi = pos - 1
            while lo < hi:
                tmp = p_items[lo]
                p_items[lo] = p_items[hi]
                p_items[hi] = tmp
                lo += 1
                hi -= 1
            p_weights[q] = node_count[nd]
            p_indptr[q + 1] = pos
        c_item, c_count, c_parent, c_hptr, c_hnodes = _build_tree(
            p_indptr, p_items[:pos], p_weights, np.int64(n_new)  # one specialisation, not two
        )
        if _is_chain(c_parent):
            # single-path tree: every combination of its items is frequent, with the count of
            # its deepest node (Han et al. 2000, Algorithm 2, first branch)
            if _emit_chain(
                c_item,
                c_count,
                sub_global,
                prefix,
                depth + 1,
                max_len,
                max_itemsets,
                out_items,
                out_lengths,
                out_counts,
            ):
                stopped = 1
                break
            continue
        s_item.append(c_item)
        s_count.append(c_count)
        s_parent.append(c_parent)
        s_hptr.append(c_hptr)
        s_hnodes.append(c_hnodes)
        s_global.append(sub_global)
        s_next.append(n_new - 1)
        s_depth.append(depth + 1)
    o_indptr, o_items, o_counts = _list_to_arrays(out_items, out_lengths, out_counts)
    return o_indptr, o_items, o_counts, stopped


# --------------------------------------------------------------------------------------------
# Apriori
# --------------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def _row_less(level, r, cand, skip, k):  # pragma: no cover - compiled
    """Compare row r of ``level`` (k items) with ``cand`` minus position ``skip``: -1, 0, 1."""
    q = 0
    for p in range(k + 1):
        if p == skip:
            continue
        a = level[r, q]
        b = cand[p]
        if a < b:
            return -1
        if a > b:
            return 1
        q += 1
    return 0


@numba.njit(cache=True, nogil=True)
def _level_contains(level, cand, skip, k):  # pragma: no cover - compiled
    lo = 0
    hi = level.shape[0] - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        c = _row_less(level, mid, cand, skip, k)
        if c == 0:
            return True
        if c < 0:
            lo = mid + 1
        else:
            hi = mid - 1
    return False


@numba.njit(cache=True, nogil=True)
def apriori_itemsets(
    indptr, items, n_items, min_count, max_len, max_itemsets
):  # pragma: no cover - compiled
    """Level-wise Apriori with bitset support counting; same contract as :func:`fpgrowth_itemsets`."""
    n_tx = indptr.shape[0] - 1
    n_words = (n_tx + 63) // 64
    bits = np.zeros((max(n_items, 1), max(n_words, 1)), np.uint64)
    for t in range(n_tx):
        word = t >> 6
        bit = np.uint64(1) << np.uint64(t & 63)
        for j in range(indptr[t], indptr[t + 1]):
            bits[items[j], word] |= bit
    out_items = List.empty_list(types.int32)
    out_lengths = List.empty_list(types.int64)
    out_counts = List.empty_list(types.int64)
    if n_items == 0 or max_len < 1 or max_itemsets < 1:
        o_indptr, o_items, o_counts = _list_to_arrays(out_items, out_lengths, out_counts)
        return o_indptr, o_items, o_counts, 0
    # level 1: every ranked item is frequent by construction, but check anyway
    keep = List.empty_list(types.int32)
    for i in range(n_items):
        c = 0
        for w in range(n_words):
            c += _popcount(bits[i, w])
        if c >= min_count:
            keep.append(np.int32(i))
            out_items.append(np.int32(i))
            out_lengths.append(1)
            out_counts.append(c)
            if len(out_lengths) >= max_itemsets:
                o_indptr, o_items, o_counts = _list_to_arrays(out_items, out_lengths, out_counts)
                return o_indptr, o_items, o_counts, 1
    level = np.empty((len(keep), 1), np.int32)
    for r in range(len(keep)):
        level[r, 0] = keep[r]
    k = 1
    acc = np.empty(max(n_words, 1), np.uint64)
    cand = np.empty(n_items + 1, np.int32)
    while level.shape[0] > 1 and k < max_len:
        m = level.shape[0]
        nxt = List.empty_list(types.int32)
        n_next = 0
        i = 0
        while i < m:
            # block of rows sharing the first k-1 items: the apriori-gen join
            e = i + 1
            while e < m:
                same = True
                for p in range(k - 1):
                    if level[e, p] != level[i, p]:
                        same = False
                        break
                if not same:
                    break
                e += 1
            for a in range(i, e):
                for w in range(n_words):
                    acc[w] = bits[level[a, 0], w]
                for p in range(1, k):
                    it = level[a, p]
                    for w in range(n_words):
                        acc[w] &= bits[it, w]
                for p in range(k):
                    cand[p] = level[a, p]
                for b in range(a + 1, e):
                    last = level[b, k - 1]
                    cand[k] = last
                    # prune: every k-subset must be frequent (dropping k-1 or k gives rows b, a)
                    ok = True
                    for skip in range(k - 1):
                        if not _level_contains(level, cand, skip, k):
                            ok = False
                            break
                    if not ok:
                        continue
                    c = 0
                    for w in range(n_words):
                        c += _popcount(acc[w] & bits[last, w])
                    if c >= min_count:
                        for p in range(k + 1):
                            nxt.append(cand[p])
                            out_items.append(cand[p])
                        n_next += 1
                        out_lengths.append(k + 1)
                        out_counts.append(c)
                        if len(out_lengths) >= max_itemsets:
                            o_indptr, o_items, o_counts = _list_to_arrays(
                                out_items, out_lengths, out_counts
                            )
                            return o_indptr, o_items, o_counts, 1
            i = e
        k += 1
        level = np.empty((n_next, k), np.int32)
        for r in range(n_next):
            for p in range(k):
                level[r, p] = nxt[r * k + p]
    o_indptr, o_items, o_counts = _list_to_arrays(out_items, out_lengths, out_counts)
    return o_indptr, o_items, o_counts, 0


def frequent_itemsets_python(
    indptr: np.ndarray,
    items: np.ndarray,
    n_items: int,
    min_count: int,
    max_len: int,
    max_itemsets: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Plain-Python twin of :func:`fpgrowth_itemsets` and :func:`apriori_itemsets`.

    Depth-first search over transaction-id sets (Zaki 2000, Eclat): extend an itemset only with
    larger items, intersecting the tid-sets. Slow, obviously correct, for tests.
    """
    tids: list[set[int]] = [set() for _ in range(n_items)]
    for t in range(len(indptr) - 1):
        for j in range(indptr[t], indptr[t + 1]):
            tids[int(items[j])].add(t)
    found: list[tuple[list[int], int]] = []
    stopped = 0

    def grow(prefix: list[int], prefix_tids: set[int] | None, start: int) -> bool:
        for i in range(start, n_items):
            cur = tids[i] if prefix_tids is None else prefix_tids & tids[i]
            if len(cur) < min_count:
                continue
            itemset = [*prefix, i]
            found.append((itemset, len(cur)))
            if len(found) >= max_itemsets:
                return True
            if len(itemset) < max_len and grow(itemset, cur, i + 1):
                return True
        return False

    if n_items > 0 and max_len > 0 and max_itemsets > 0:
        stopped = int(grow([], None, 0))
    out_indptr = np.zeros(len(found) + 1, np.int64)
    out_indptr[1:] = np.cumsum([len(s) for s, _ in found], dtype=np.int64)
    out_items = np.array([i for s, _ in found for i in s], dtype=np.int32)
    out_counts = np.array([c for _, c in found], dtype=np.int64)
    return out_indptr, out_items, out_counts, stopped


# --------------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def _hash_items(buf, n):  # pragma: no cover - compiled
    h = _FNV_OFFSET
    for p in range(n):
        h = (h ^ np.uint64(buf[p])) * _FNV_PRIME
    return h


@numba.njit(cache=True, nogil=True)
def _lookup(table, mask, indptr, items, buf, n):  # pragma: no cover - compiled
    slot = _hash_items(buf, n) & mask
    while True:
        s = table[slot]
        if s < 0:
            return -1
        start = indptr[s]
        if indptr[s + 1] - start == n:
            same = True
            for p in range(n):
                if items[start + p] != buf[p]:
                    same = False
                    break
            if same:
                return s
        slot = (slot + np.uint64(1)) & mask


@numba.njit(cache=True, nogil=True)
def rule_candidates(
    indptr, items, counts, n_transactions, min_confidence, min_lift, max_consequent, max_rules
):  # pragma: no cover - compiled
    """Enumerate rules ``A => Z \\ A`` from frequent itemsets, keeping those above both thresholds.

    Parameters
    ----------
    indptr, items, counts : int64, int32, int64 arrays
        Frequent itemsets as CSR, items sorted ascending within each row, with support counts.
        Subsets of an itemset that are missing from the collection are skipped.
    n_transactions : int
    min_confidence, min_lift : float
        Keep a rule when :math:`\\sigma(Z)/\\sigma(A) \\ge` ``min_confidence`` and
        :math:`n\\,\\sigma(Z)/(\\sigma(A)\\sigma(C)) \\ge` ``min_lift``.
    max_consequent : int
        Largest consequent :math:`|C|`; 1 enumerates only the :math:`|Z|` single-item rules.
    max_rules : int
        Stop after this many rules.

    Returns
    -------
    rule_itemset, rule_mask, antecedent_counts, consequent_counts, stopped
        For each rule: the row of :math:`Z`, the bit mask of the positions of :math:`Z` that form
        the antecedent, :math:`\\sigma(A)`, :math:`\\sigma(C)`; ``stopped`` is 1 when
        ``max_rules`` was reached.
    """
    n = indptr.shape[0] - 1
    size = 1
    while size < 2 * n + 2:
        size *= 2
    table = np.full(size, -1, np.int64)
    mask = np.uint64(size - 1)
    for s in range(n):
        start = indptr[s]
        slot = _hash_items(items[start : indptr[s + 1]], indptr[s + 1] - start) & mask
        while table[slot] >= 0:
            slot = (slot + np.uint64(1)) & mask
        table[slot] = s
    cap = 1024
    r_itemset = np.empty(cap, np.int64)
    r_mask = np.empty(cap, np.int64)
    r_ant = np.empty(cap, np.int64)
    r_cons = np.empty(cap, np.int64)
    n_rules = 0
    ant = np.empty(64, np.int32)
    cons = np.empty(64, np.int32)
    for s in range(n):
        start = indptr[s]
        k = indptr[s + 1] - start
        if k < 2 or k > 62:
            continue
        c_z = counts[s]
        full = (np.int64(1) << k) - 1
        # single-item consequents: the k masks with one bit cleared, not all 2**k - 2
        n_masks = k if max_consequent == 1 else full - 1
        for t in range(n_masks):
            if max_consequent == 1:
                m = full ^ (np.int64(1) << t)
            else:
                m = t + 1
                if k - _popcount(np.uint64(m)) > max_consequent:
                    continue
            na = 0
            nc = 0
            for p in range(k):
                if (m >> p) & 1:
                    ant[na] = items[start + p]
                    na += 1
                else:
                    cons[nc] = items[start + p]
                    nc += 1
            sa = _lookup(table, mask, indptr, items, ant, na)
            if sa < 0:
                continue
            c_a = counts[sa]
            confidence = c_z / c_a
            if confidence < min_confidence:
                continue
            sc = _lookup(table, mask, indptr, items, cons, nc)
            if sc < 0:
                continue
            c_c = counts[sc]
            lift = confidence * n_transactions / c_c
            if lift < min_lift:
                continue
            if n_rules == cap:
                cap *= 2
                r_itemset = _grow(r_itemset, cap)
                r_mask = _grow(r_mask, cap)
                r_ant = _grow(r_ant, cap)
                r_cons = _grow(r_cons, cap)
            r_itemset[n_rules] = s
            r_mask[n_rules] = m
            r_ant[n_rules] = c_a
            r_cons[n_rules] = c_c
            n_rules += 1
            if n_rules >= max_rules:
                return r_itemset[:n_rules], r_mask[:n_rules], r_ant[:n_rules], r_cons[:n_rules], 1
    return r_itemset[:n_rules], r_mask[:n_rules], r_ant[:n_rules], r_cons[:n_rules], 0


@numba.njit(cache=True, nogil=True)
def _grow(a, cap):  # pragma: no cover - compiled
    b = np.empty(cap, a.dtype)
    # an element loop, not a slice assignment: the latter brings numba's shape-mismatch error
    # path (string formatting) into the compiled code, seconds of compilation for nothing
    for t in range(a.shape[0]):
        b[t] = a[t]
    return b


def rule_candidates_python(
    indptr: np.ndarray,
    items: np.ndarray,
    counts: np.ndarray,
    n_transactions: int,
    min_confidence: float,
    min_lift: float,
    max_consequent: int,
    max_rules: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Plain-Python twin of :func:`rule_candidates` (a dict instead of the hash table)."""
    support = {
        tuple(int(i) for i in items[indptr[s] : indptr[s + 1]]): int(counts[s])
        for s in range(len(indptr) - 1)
    }
    out: list[tuple[int, int, int, int]] = []
    for s in range(len(indptr) - 1):
        row = [int(i) for i in items[indptr[s] : indptr[s + 1]]]
        k = len(row)
        if k < 2 or k > 62:
            continue
        full = (1 << k) - 1
        if max_consequent == 1:
            masks = [full ^ (1 << t) for t in range(k)]
        else:
            masks = [m for m in range(1, full) if k - bin(m).count("1") <= max_consequent]
        for m in masks:
            a = tuple(row[p] for p in range(k) if (m >> p) & 1)
            c = tuple(row[p] for p in range(k) if not (m >> p) & 1)
            if a not in support or c not in support:
                continue
            confidence = int(counts[s]) / support[a]
            if confidence < min_confidence:
                continue
            if confidence * n_transactions / support[c] < min_lift:
                continue
            out.append((s, m, support[a], support[c]))
            if len(out) >= max_rules:
                arr = np.array(out, dtype=np.int64).reshape(-1, 4)
                return arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], 1
    arr = np.array(out, dtype=np.int64).reshape(-1, 4)
    return arr[:, 0].copy(), arr[:, 1].copy(), arr[:, 2].copy(), arr[:, 3].copy(), 0


# --------------------------------------------------------------------------------------------
# Scoring with rules
# --------------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def score_baskets(
    basket_indptr,
    basket_indices,
    first_indptr,
    rule_order,
    ant_indptr,
    ant_indices,
    consequent,
    confidence,
    prior,
    out,
):  # pragma: no cover - compiled
    """Best applicable rule confidence per (basket, item).

    Implements :math:`s_{bi} = \\max(\\pi_i, \\max\\{\\mathrm{conf}(A \\Rightarrow i) : A \\subseteq B_b\\})`
    where :math:`\\pi_i` is the prior (the confidence of the empty-antecedent rule).

    Parameters
    ----------
    basket_indptr, basket_indices : int64 / int32
        Baskets as CSR over item indices (the rows to score).
    first_indptr, rule_order : int64 / int64
        Rules grouped by the smallest item of their antecedent: the rules whose smallest
        antecedent item is ``a`` are ``rule_order[first_indptr[a]:first_indptr[a + 1]]``.
    ant_indptr, ant_indices : int64 / int32
        Antecedents as CSR, items ascending.
    consequent : int32, confidence : float64
        Single consequent item and confidence of each rule.
    prior : float64, shape (n_items,)
    out : float32, shape (n_baskets, n_items)
        Written in place.
    """
    n_items = prior.shape[0]
    in_basket = np.zeros(n_items, np.bool_)
    for b in range(basket_indptr.shape[0] - 1):
        for i in range(n_items):
            out[b, i] = prior[i]
        for j in range(basket_indptr[b], basket_indptr[b + 1]):
            in_basket[basket_indices[j]] = True
        for j in range(basket_indptr[b], basket_indptr[b + 1]):
            a = basket_indices[j]
            for q in range(first_indptr[a], first_indptr[a + 1]):
                r = rule_order[q]
                ok = True
                for p in range(ant_indptr[r] + 1, ant_indptr[r + 1]):
                    if not in_basket[ant_indices[p]]:
                        ok = False
                        break
                if ok:
                    c = consequent[r]
                    if confidence[r] > out[b, c]:
                        out[b, c] = confidence[r]
        for j in range(basket_indptr[b], basket_indptr[b + 1]):
            in_basket[basket_indices[j]] = False


def score_baskets_python(
    basket_indptr: np.ndarray,
    basket_indices: np.ndarray,
    first_indptr: np.ndarray,
    rule_order: np.ndarray,
    ant_indptr: np.ndarray,
    ant_indices: np.ndarray,
    consequent: np.ndarray,
    confidence: np.ndarray,
    prior: np.ndarray,
    out: np.ndarray,
) -> None:
    """Plain-Python twin of :func:`score_baskets`: test every rule against every basket."""
    del first_indptr, rule_order  # the twin scans all rules instead of the index
    for b in range(len(basket_indptr) - 1):
        basket = set(basket_indices[basket_indptr[b] : basket_indptr[b + 1]].tolist())
        row = prior.astype(np.float32).copy()
        for r in range(len(consequent)):
            antecedent = set(ant_indices[ant_indptr[r] : ant_indptr[r + 1]].tolist())
            if antecedent <= basket:
                row[consequent[r]] = max(row[consequent[r]], np.float32(confidence[r]))
        out[b] = row


# --------------------------------------------------------------------------------------------
# Canonical order of itemsets
# --------------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def sort_rows_and_pack(indptr, items, bits, per_key, keys):  # pragma: no cover - compiled
    """Sort each CSR row in place and pack it into sort keys.

    Row ``s`` holding ``x_0 < x_1 < ...`` sets ``keys[c, s]`` to the concatenation, most
    significant first, of ``x_q + 1`` (``bits`` bits each) for ``q`` in
    ``c * per_key .. (c + 1) * per_key - 1``, zero where the row is shorter; comparing the key
    columns in order compares the rows lexicographically.
    """
    for s in range(indptr.shape[0] - 1):
        a = indptr[s]
        b = indptr[s + 1]
        for p in range(a + 1, b):  # insertion sort: rows are short
            v = items[p]
            q = p - 1
            while q >= a and items[q] > v:
                items[q + 1] = items[q]
                q -= 1
            items[q + 1] = v
        for c in range(keys.shape[0]):
            keys[c, s] = 0
        for p in range(a, b):
            col = p - a
            shift = np.uint64((per_key - 1 - col % per_key) * bits)
            keys[col // per_key, s] |= np.uint64(items[p] + 1) << shift


def sort_rows_and_pack_python(
    indptr: np.ndarray, items: np.ndarray, bits: int, per_key: int, keys: np.ndarray
) -> None:
    """Plain-Python twin of :func:`sort_rows_and_pack`."""
    for s in range(len(indptr) - 1):
        row = sorted(int(x) for x in items[indptr[s] : indptr[s + 1]])
        items[indptr[s] : indptr[s + 1]] = row
        for c in range(keys.shape[0]):
            value = 0
            for q in range(per_key):
                col = c * per_key + q
                value = (value << bits) | (row[col] + 1 if col < len(row) else 0)
            keys[c, s] = np.uint64(value)


@numba.njit(cache=True, nogil=True)
def take_rows(indptr, items, rows):  # pragma: no cover - compiled
    """CSR rows ``rows`` of ``(indptr, items)``, in that order, as a new CSR."""
    n = rows.shape[0]
    out_indptr = np.zeros(n + 1, np.int64)
    for k in range(n):
        r = rows[k]
        out_indptr[k + 1] = out_indptr[k] + indptr[r + 1] - indptr[r]
    out_items = np.empty(out_indptr[n], items.dtype)
    for k in range(n):
        r = rows[k]
        start = out_indptr[k]
        for p in range(indptr[r], indptr[r + 1]):
            out_items[start + p - indptr[r]] = items[p]
    return out_indptr, out_items


def take_rows_python(
    indptr: np.ndarray, items: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Plain-NumPy twin of :func:`take_rows`."""
    parts = [items[indptr[r] : indptr[r + 1]] for r in rows]
    out_indptr = np.zeros(len(rows) + 1, np.int64)
    out_indptr[1:] = np.cumsum([len(p) for p in parts])
    out_items = np.concatenate(parts).astype(items.dtype) if parts else np.zeros(0, items.dtype)
    return out_indptr, out_items
