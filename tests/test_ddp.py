"""Data-parallel training: 2 CPU processes (gloo) under torchrun against 1 process with the same global batch.

The runs in 2 processes happen in one torchrun launch (tests/ddp_worker.py, see there); what they are compared
with runs here, in this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from ddp_worker import EPOCHS, ProbeLoss, mlp_run, plain_fit, two_heads

import nnzoo
from nnzoo import Batches, Split, api, checkpoint, cli
from nnzoo.errors import UserError
from nnzoo.parallel import check_batch_size

pytestmark = pytest.mark.slow  # several processes or a browser: -m 'not slow' skips them

WORKER = Path(__file__).with_name("ddp_worker.py")
# Measured in fp32 on 2 shared cores of an AMD EPYC: over 40 Adam steps the per-step probe losses of 1 and 2
# processes differ by at most 1.2e-7 relative and the final weights by 3.7e-7 (float rounding: a rank sums 16
# samples' gradients, not 32). The tolerances leave 30-100x room for other CPUs' kernels and stay 200x below the
# 2.2e-3 that bf16 autocast's rounding alone caused; which samples each step trained on is checked exactly.
LOSS_RTOL = 1e-5
WEIGHT_ATOL = 1e-5


def _env(tmp: Path) -> dict[str, str]:
    """The environment of the processes torchrun starts: this nnzoo, offline, caches inside the test folder."""
    src = str(Path(nnzoo.__file__).parents[1])
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp / "cache"), OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([src, str(WORKER.parent), *filter(None, [os.environ.get("PYTHONPATH")])])
    env.pop("NNZOO_DATA_DIR", None)
    return env


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The worker's results under OUT, after a run cut in one process here for the worker to finish in two."""
    out = tmp_path_factory.mktemp("ddp")
    mlp_run(out / "single-cut", stop=2)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(WORKER), str(out)]
    proc = subprocess.run(cmd, env=_env(out), cwd=out, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def one(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict], list[float]]:
    """The worker's first run in one process: its folder, history, per-step probe losses and samples."""
    probe, seen = ProbeLoss(), []
    run_dir = tmp_path_factory.mktemp("one")
    trainer = mlp_run(run_dir, callbacks=[probe], seen=seen)
    assert trainer.dist.world_size == 1
    return run_dir, trainer.history, probe.losses, seen


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return checkpoint.load(run / "checkpoints" / "last.pt")["model"]


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


# ---- without processes -----------------------------------------------------------------------------------------
def test_ranks_take_the_single_process_batches_between_them() -> None:
    x = torch.arange(100, dtype=torch.uint8).view(100, 1)
    split = Split(x, torch.arange(100))
    one = Batches(split, 12, shuffle=True, seed=5)
    ranks = [Batches(split, 12, shuffle=True, seed=5, rank=r, world_size=4, even=True) for r in range(4)]
    for epoch in (0, 3):
        for b in (one, *ranks):
            b.set_epoch(epoch)
        single = [y for _, y in one]
        shares = [[y for _, y in b] for b in ranks]
        assert all(len(s) == len(single) == len(b) == 9 for s, b in zip(shares, ranks))  # the same steps
        for k, batch in enumerate(single[:-1]):  # every full global batch is exactly the single process's
            assert sorted(torch.cat([s[k] for s in shares]).tolist()) == sorted(batch.tolist())
            assert all(len(s[k]) == 3 for s in shares)
        # The last global batch (100 = 8 * 12 + 4) splits 1 + 1 + 1 + 1: nothing padded, nothing lost.
        assert sorted(torch.cat([s[-1] for s in shares]).tolist()) == sorted(single[-1].tolist())
    # 102 samples: the last global batch of 6 is padded to 8 with the epoch's first two samples.
    split = Split(torch.zeros(102, 1), torch.arange(102))
    ranks = [Batches(split, 12, shuffle=True, seed=5, rank=r, world_size=4, even=True) for r in range(4)]
    order = Batches(split, 12, shuffle=True, seed=5).order()
    last = [list(b)[-1][1] for b in ranks]
    assert [len(t) for t in last] == [2, 2, 2, 2]
    assert sorted(torch.cat(last).tolist()) == sorted(order[96:].tolist() + order[:2].tolist())
    # Evaluation: contiguous chunks, in order, nothing padded.
    chunks = [torch.cat([y for _, y in Batches(split, 10, rank=r, world_size=4)]) for r in range(4)]
    assert torch.cat(chunks).tolist() == list(range(102))


def test_the_global_batch_must_split_evenly(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(UserError, match="--batch-size 30 is the global batch and must divide evenly across the 4"):
        check_batch_size(30, 4)
    check_batch_size(32, 4)
    # Caught before torchrun starts: one sentence, exit 2.
    assert cli.main(["train", "digits-mlp", "--nproc", "3", "--quiet"]) == 2
    assert "--batch-size 32 is the global batch" in capsys.readouterr().err
    assert cli.main(["train", "digits-mlp", "--nproc", "0"]) == 2
    assert "--nproc must be a positive whole number" in capsys.readouterr().err
    argv = ["train", "r", "--np", "2", "--nproc=3", "--epochs", "1"]
    assert cli._without_nproc(argv) == ["train", "r", "--epochs", "1"]


# ---- 2 processes against 1 ---------------------------------------------------------------------------------------
def test_two_processes_follow_one_process_step_by_step(runs: Path, one: tuple) -> None:
    run_dir, history, losses, seen = one
    # Each step the two ranks trained on 16 samples each, and together on the one process's 32.
    shares = [json.loads((runs / f"ddp-seen-rank{r}.json").read_text()) for r in (0, 1)]
    assert len(seen) == len(shares[0]) == len(shares[1]) == 10 * EPOCHS
    for step, (a, b, both) in enumerate(zip(*shares, seen)):
        assert len(a) == len(b) == 16 and sorted(a + b) == pytest.approx(sorted(both)), step
    two = json.loads((runs / "ddp-probe.json").read_text())
    assert len(losses) == len(two["probe"]) == 10 * EPOCHS
    rel = [abs(a - b) / abs(a) for a, b in zip(losses, two["probe"])]
    print(f"\nper-step probe loss, 1 vs 2 processes: max relative difference {max(rel):.2e}")
    assert max(rel) < LOSS_RTOL
    assert losses[-1] < losses[0] * 0.5  # it did learn
    assert len(two["history"]) == len(history) == EPOCHS
    for h1, h2 in zip(history, two["history"]):  # epoch means over both ranks' samples, and validation's
        for k in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert h2[k] == pytest.approx(h1[k], rel=LOSS_RTOL, abs=1e-6), (h1["epoch"], k)
        assert h2["samples_per_s"] * h2["epoch_seconds"] == pytest.approx(320)  # both ranks' samples
    diff = _max_diff(_weights(run_dir), _weights(runs / "ddp"))
    print(f"final weights, 1 vs 2 processes: max absolute difference {diff:.2e}")
    assert diff < WEIGHT_ATOL
    lines = (runs / "ddp" / "metrics.jsonl").read_text().splitlines()  # written once, by rank 0
    assert [json.loads(line)["epoch"] for line in lines] == list(range(1, EPOCHS + 1))


def test_checkpoints_resume_across_process_counts(runs: Path, one: tuple) -> None:
    full = _weights(one[0])  # 1 process throughout
    cut_in_two = checkpoint.load(runs / "ddp-cut" / "checkpoints" / "last.pt")
    assert cut_in_two["epoch"] == 2 and not any(k.startswith(("module.", "model.")) for k in cut_in_two["model"])
    trainer = mlp_run(runs / "ddp-cut", resume=True)  # 2 processes -> 1
    assert trainer.epoch == EPOCHS and trainer.global_step == 10 * EPOCHS and trainer.dist.world_size == 1
    d21 = _max_diff(full, _weights(runs / "ddp-cut"))
    d12 = _max_diff(full, _weights(runs / "single-cut"))  # 1 process -> 2, in the worker
    print(f"\nresumed across process counts, against 1 process throughout: 2->1 {d21:.2e}, 1->2 {d12:.2e}")
    assert d21 < WEIGHT_ATOL and d12 < WEIGHT_ATOL
    assert checkpoint.load(runs / "single-cut" / "checkpoints" / "last.pt")["global_step"] == 10 * EPOCHS


def test_a_resumed_distributed_run_continues_every_ranks_random_stream(runs: Path) -> None:
    full, cut = _weights(runs / "drop-full"), _weights(runs / "drop-cut")
    for k in full:  # dropout masks on both ranks as if never stopped: the same weights to the bit
        assert torch.equal(full[k], cut[k]), k
    peers = checkpoint.load(runs / "drop-cut" / "checkpoints" / "last.pt")["peer_rng"]
    assert peers["world_size"] == 2 and not torch.equal(peers["states"][0]["torch"], peers["states"][1]["torch"])


def test_several_optimizers_average_their_own_gradients(runs: Path) -> None:
    # A train_step of its own with two optimizers: 2 processes match 1, and the ranks hold the same weights.
    r0, r1 = (torch.load(runs / f"two-heads-rank{r}.pt", weights_only=True) for r in (0, 1))
    trainer, history = two_heads()
    assert _max_diff(r0["state"], r1["state"]) == 0
    diff = _max_diff(trainer.model.state_dict(), r0["state"])
    print(f"\ntwo optimizers, final weights 1 vs 2 processes: max absolute difference {diff:.2e}")
    assert diff < WEIGHT_ATOL
    for h1, h2 in zip(history, r0["history"]):
        for k in ("loss_a", "loss_b", "val_loss"):
            assert h2[k] == pytest.approx(h1[k], rel=LOSS_RTOL), (h1["epoch"], k)
    # The GAN (its noise differs between ranks, so no single-process twin): in step on both ranks, buffers too.
    g0, g1 = (torch.load(runs / f"gan-rank{r}.pt", weights_only=True) for r in (0, 1))
    assert g0["steps"] == 6 and _max_diff(g0["state"], g1["state"]) == 0
    assert all(torch.isfinite(torch.tensor([h["d_loss"], h["g_loss"]])).all() for h in g0["history"])


def test_a_plain_module_trains_data_parallel(runs: Path) -> None:
    """nnzoo.fit of a plain nn.Sequential on numpy arrays: 2 processes match 1 (nnzoo shards the arrays); a
    DataLoader with a DistributedSampler trains as the user sharded it; one without is refused in one sentence."""
    r0, r1 = (torch.load(runs / f"plain-rank{r}.pt", weights_only=True) for r in (0, 1))
    single = plain_fit()
    assert _max_diff(r0["state"], r1["state"]) == 0
    assert _max_diff(single.model.state_dict(), r0["state"]) < WEIGHT_ATOL
    for h1, h2 in zip(single.history, r0["history"]):
        assert h2["loss"] == pytest.approx(h1["loss"], rel=LOSS_RTOL)
    loaders = json.loads((runs / "plain-loaders.json").read_text())
    assert loaders["sampled"][-1]["loss"] < loaders["sampled"][0]["loss"]
    assert "give it a DistributedSampler" in loaders["refused"]


def test_cli_nproc_2_runs_torchrun(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capfd: pytest.CaptureFixture) -> None:  # fmt: skip
    for k, v in _env(tmp_path).items():
        monkeypatch.setenv(k, v)
    code = cli.main(["train", "digits-mlp", "--nproc", "2", "--max-steps", "2", "--out", str(tmp_path / "r")])
    out, err = capfd.readouterr()
    assert code == 0, err[-3000:]
    assert "launching: python -m torch.distributed.run --standalone --nproc_per_node=2 -m nnzoo train digits-mlp " \
           "--max-steps 2 --out" in err  # fmt: skip
    assert out.count("run ") == 1 and "in 2 processes (global batch 32)" in out  # rank 0 alone prints
    assert out.count("test (best checkpoint)") == 1
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["steps"] == 2 and metrics["processes"] == 2 and metrics["epochs"] == 1
    assert len((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()) == 1
    assert {p.name for p in (tmp_path / "r" / "report").iterdir()} >= {"curves.png", "confusion_matrix.png"}
    assert api.load_run(tmp_path / "r").config.recipe == "digits-mlp"
