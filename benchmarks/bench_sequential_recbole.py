"""GRU4Rec and SASRec of RecBole (the reference implementation) on chuchun's leave-last-out split.

Usage::

    PYTHONPATH=src python benchmarks/bench_sequential_recbole.py [--models SASRec GRU4Rec] \
        [--epochs 40] [--threads 1] [--probe 20 --threads 1 2] [--stop-at HH:MM]

The MovieLens 100K log is written as a RecBole atomic file whose timestamps are each row's rank
in chuchun's time order (ties broken by item id, as :func:`chuchun.data.user_sequences` does), so
RecBole's leave-one-out split (``LS: valid_and_test``, time order) holds out exactly the
validation and test items of :func:`chuchun.data.leave_last_out`. RecBole trains on every prefix
of every training sequence (its data augmentation) with the full-softmax cross-entropy and stops
early on its validation NDCG@10; the best epoch's weights are then scored on the test users
with chuchun's protocol: full ranking, the user's earlier items (training and validation)
excluded. RecBole's own evaluator does not exclude them for sequential models, so its printed
test numbers are not the ones compared.

Settings follow ``benchmarks/bench_sequential.py`` (64 factors, at most 50 recent items,
dropout, learning rate, batch size, ReLU feed-forward layer of width 64, Adam without weight
decay, full-softmax cross-entropy, patience 3); the architectures differ in details RecBole fixes
(its SASRec normalises after each sub-layer rather than before and drops out attention weights;
its GRU4Rec has dropout on the input embedding only), and RecBole trains on every prefix where
chuchun's SASRec trains every position of a window in one pass.

RecBole is not in an extra of ``pyproject.toml``: its declared requirements pin ``ray<=2.6.3``
and other packages it does not import for this use. Install it with::

    pip install --no-deps recbole==1.2.1 && pip install tensorboard colorama texttable

(torch, numpy, scipy, pandas, scikit-learn, pyyaml, tqdm, colorlog and psutil come with
chuchun's extras). RecBole 1.2.1 reads aliases NumPy 2 removed; :func:`numpy2_aliases` restores
them before its configuration is built.

``--probe N`` trains only the first ``N`` mini-batches of one epoch and reports the wall and
CPU time per batch (split into data loading, forward pass with the loss, backward pass and
optimiser step) and the extrapolated time of one epoch, for each ``--threads`` count in turn,
for machines where full training does not fit.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DATASETS, markdown_table, write_results  # noqa: E402

from chuchun.data import leave_last_out, user_sequences  # noqa: E402
from chuchun.datasets import load_movielens  # noqa: E402

K = 10

SETTINGS: dict[str, dict[str, Any]] = {
    "GRU4Rec": dict(embedding_size=64, hidden_size=64, num_layers=1, dropout_prob=0.1,
                    learning_rate=2e-3, train_batch_size=64),
    "SASRec": dict(hidden_size=64, inner_size=64, n_layers=2, n_heads=1,
                   hidden_dropout_prob=0.2, attn_dropout_prob=0.2, hidden_act="relu",
                   learning_rate=3e-3, train_batch_size=128),
}


def write_atomic(folder: Path, name: str) -> Any:
    """The MovieLens 100K log as ``folder/name/name.inter``; returns chuchun's split."""
    data = load_movielens(DATASETS / "ml-100k").ratings
    seqs = user_sequences(data)
    rows = []
    rank = 0
    for u in range(len(seqs)):
        for i in seqs[u]:
            rows.append(f"{data.users.ids[u]}\t{data.items.ids[i]}\t{rank}")
            rank += 1
    out = folder / name
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.inter").write_text(
        "user_id:token\titem_id:token\ttimestamp:float\n" + "\n".join(rows) + "\n"
    )
    return leave_last_out(data)


def numpy2_aliases() -> None:
    """RecBole 1.2.1 (``Config.compatibility_settings``) reads ``np.float_``, ``np.complex_``
    and ``np.unicode_``, which NumPy 2 removed; give them back their NumPy 1 meaning."""
    for old, new in (("float_", np.float64), ("complex_", np.complex128),
                     ("unicode_", np.str_)):
        if old not in np.__dict__:
            setattr(np, old, new)


class _TimeUp(Exception):
    pass


def run(model_name: str, folder: Path, split: Any, args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.sequential_recommender import GRU4Rec, SASRec
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    numpy2_aliases()
    cls = {"GRU4Rec": GRU4Rec, "SASRec": SASRec}[model_name]
    config = Config(model=cls, dataset="ml100kseq", config_dict={
        "data_path": str(folder), "checkpoint_dir": str(folder / "saved"),
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "MAX_ITEM_LIST_LENGTH": 50, "loss_type": "CE", "train_neg_sample_args": None,
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full",
                      "group_by": "user"},
        "metrics": ["Hit", "NDCG"], "topk": [K], "valid_metric": "NDCG@10",
        "epochs": args.epochs, "stopping_step": args.patience, "eval_batch_size": 512,
        "device": "cpu", "use_gpu": False, "seed": args.seed, "reproducibility": True,
        "show_progress": False, "worker": 0, "log_wandb": False, "state": "WARNING",
        **SETTINGS[model_name],
    })
    init_seed(config["seed"], config["reproducibility"])
    torch.set_num_threads(args.threads)
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    model = cls(config, train_data.dataset).to("cpu")
    trainer = Trainer(config, model)
    n_batches = len(train_data)
    if args.probe:
        trainer.optimizer = trainer._build_optimizer()
        model.train()
        load = " ".join(open("/proc/loadavg").read().split()[:3])
        t = time.perf_counter()
        cpu = time.process_time()
        parts = {"data": 0.0, "forward + loss": 0.0, "backward": 0.0, "optimiser": 0.0}
        done = 0
        batches = iter(train_data)
        while done < min(args.probe, n_batches):
            t0 = time.perf_counter()
            batch = next(batches)
            t1 = time.perf_counter()
            trainer.optimizer.zero_grad()
            loss = model.calculate_loss(batch)
            t2 = time.perf_counter()
            loss.backward()
            t3 = time.perf_counter()
            trainer.optimizer.step()
            t4 = time.perf_counter()
            for key, seconds in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                parts[key] += seconds
            done += 1
        per_batch = (time.perf_counter() - t) / done
        cpu_per_batch = (time.process_time() - cpu) / done
        return {"model": f"RecBole {model_name}", "torch threads": args.threads,
                "training sequences": len(train_data.dataset),
                "batches per epoch": n_batches, "probe batches": done,
                "s per batch": per_batch, "CPU s per batch": cpu_per_batch,
                "s per epoch (extrapolated)": per_batch * n_batches,
                "CPU s per epoch (extrapolated)": cpu_per_batch * n_batches,
                **{f"s per batch: {k}": v / done for k, v in parts.items()},
                "load average at start": load}

    curve: list[str] = []

    def time_limit(epoch: int, valid_score: float) -> None:
        print(model_name, "epoch", epoch, "valid NDCG@10", valid_score,
              round(time.perf_counter() - t), "s", flush=True)
        curve.append(f"{valid_score:.4f}")
        if args.stop_at is not None and time.time() > args.stop_at:
            raise _TimeUp

    t = time.perf_counter()
    stopped = False
    try:
        trainer.fit(train_data, valid_data, saved=True, verbose=False, callback_fn=time_limit)
    except _TimeUp:
        stopped = True
    seconds = time.perf_counter() - t
    state = torch.load(trainer.saved_model_file, map_location="cpu", weights_only=False)
    model.load_state_dict(state["state_dict"])
    model.eval()
    return {"model": f"RecBole {model_name}", "best valid NDCG@10 (RecBole, unmasked)":
            float(trainer.best_valid_score), "epochs run": len(curve),
            "valid NDCG@10 per epoch (RecBole, unmasked)": " / ".join(curve),
            "stopped by time": stopped,
            **score_test(model, dataset, test_data, split), "fit s": seconds}


def score_test(model: Any, dataset: Any, test_data: Any, split: Any) -> dict[str, float]:
    """HR@10 and NDCG@10 of the test item, full ranking, the user's train + validation items
    excluded (chuchun's protocol)."""
    import torch

    seen = split.train_validation.csr
    user_tokens = dataset.field2id_token["user_id"]
    item_tokens = dataset.field2id_token["item_id"]
    # RecBole's internal item id -> chuchun item index (0 is RecBole's padding)
    to_ours = np.full(len(item_tokens), -1, dtype=np.int64)
    to_ours[1:] = split.train_validation.items.index(
        np.array([type(split.train_validation.items.ids[0])(x) for x in item_tokens[1:]])
    )
    n = len(split.train_validation.items)
    hits, ndcg, users = 0.0, 0.0, 0
    with torch.no_grad():
        for batch in test_data:
            interaction = batch[0]
            raw = model.full_sort_predict(interaction).cpu().numpy()
            scores = np.full((len(raw), n), -np.inf, dtype=np.float64)
            ours = to_ours[1:]
            scores[:, ours[ours >= 0]] = raw[:, 1:][:, ours >= 0]
            uids = split.train_validation.users.index(np.array(
                [type(split.train_validation.users.ids[0])(user_tokens[u])
                 for u in interaction["user_id"].numpy()]))
            targets = to_ours[interaction["item_id"].numpy()]
            for r, (u, target) in enumerate(zip(uids, targets, strict=True)):
                row = scores[r]
                row[seen.indices[seen.indptr[u]:seen.indptr[u + 1]]] = -np.inf
                rank = int((row > row[target]).sum())
                users += 1
                if rank < K:
                    hits += 1
                    ndcg += 1.0 / np.log2(rank + 2.0)
    return {"test users": users, "HR@10": hits / users, "NDCG@10": ndcg / users}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="*", default=["GRU4Rec", "SASRec"])
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--patience", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0, help="RecBole's seed (initialisation, "
                    "shuffling, dropout)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1],
                    help="torch threads (with --probe, each count is probed in turn)")
    ap.add_argument("--probe", type=int, default=0,
                    help="time this many training mini-batches only (no full training)")
    ap.add_argument("--stop-at", default=None, metavar="HH:MM",
                    help="UTC time after which training stops at the end of the epoch")
    ap.add_argument("--topic", default="sequential_recbole")
    ap.add_argument("--note", default="The machine's 2 cores were shared with other jobs "
                    "during the run: times are noisy and only indicative.",
                    help="sentence on the machine's state written under the table")
    args = ap.parse_args()
    if args.stop_at is not None:
        hh, mm = (int(x) for x in args.stop_at.split(":"))
        now = time.time()
        args.stop_at = now - now % 86400 + hh * 3600 + mm * 60
    import pandas as pd

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        split = write_atomic(folder, "ml100kseq")
        for name in args.models:
            for threads in args.threads if args.probe else args.threads[:1]:
                rows.append(run(name, folder, split, argparse.Namespace(**{
                    **vars(args), "threads": threads})))
                print(rows[-1], flush=True)
    table = pd.DataFrame(rows).set_index("model")
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    heading = ("MovieLens 100K, leave-last-out: RecBole training cost probe" if args.probe
               else "MovieLens 100K, leave-last-out, full ranking, earlier items excluded")
    path = write_results(args.topic, "Sequence models: RecBole reference run",
                         [(heading, markdown_table(table))], libraries=["torch", "recbole"],
                         notes=f"Load average at the end of the run: {load}. {args.note}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
