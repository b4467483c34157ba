"""Two gloo processes on CPU (fp32) against one process: SimCLR's gathered negatives, MoCo's
shuffle-BN key order, its global queue, and the loss and averaged gradients of both; and a stop
decision that all ranks agree on when only some of them are signalled."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from hallucinator import ModelConfig, build_method, checkpoint, distributed, rundir

from cpu_pin import cpu_only
from engine_support import ROOT, TINY, assert_same_weights, needs_fmnist

pytestmark = pytest.mark.bit_exact  # CPU (gloo), fp32, deterministic algorithms in this process
N = 4  # per-process batch


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(2 * N, 3, 16, 16, generator=g), torch.randn(2 * N, 3, 16, 16, generator=g)


def _simclr():
    torch.manual_seed(0)
    model = build_method(ModelConfig(method="simclr", width=4, hallucinator=True))
    return model.eval()  # eval-mode BN: per-sample forward, so only the loss couples the processes


def _moco():
    torch.manual_seed(0)
    return build_method(ModelConfig(method="mocov2", width=4, queue_size=64, shuffle_bn=True, hallucinator=True))


def _step(model, x1, x2):
    """One forward/backward; the gradients averaged over processes as DDP does, the loss too."""
    out = model(x1, x2)
    out.loss.backward()
    grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    for g in grads:
        if distributed.world_size() > 1:
            dist.all_reduce(g)
            g /= distributed.world_size()
    return out, distributed.all_reduce_mean(out.loss), grads


def _worker(rank, port, out_dir, kind):
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    distributed.init(backend="gloo")
    torch.set_num_threads(1)
    x1, x2 = _data()
    mine = slice(rank * N, (rank + 1) * N)
    if kind == "simclr":
        out, loss, grads = _step(_simclr(), x1[mine], x2[mine])
        torch.save({"loss": loss, "grads": grads, "lam": out.lam}, f"{out_dir}/simclr{rank}.pt")
    elif kind == "lambda_per_rank":
        from hallucinator.hallucinator import Hallucinator
        h = Hallucinator(8, seed=0, per_rank=True)
        lams = torch.stack([h.sample_lambda(N) for _ in range(3)])
        torch.save({"lams": lams, "state": h.get_extra_state()["generator"]}, f"{out_dir}/lam{rank}.pt")
    elif kind == "moco":
        shuffle, seen = distributed.batch_shuffle, {}

        def recording_shuffle(x):  # keeps the permutation so the test can recompute the shards
            shard, unshuffle = shuffle(x)
            seen["unshuffle"] = unshuffle
            return shard, unshuffle

        distributed.batch_shuffle = recording_shuffle
        model = _moco()  # train mode: the key encoder's BN sees this process's shard of the shuffled batch
        out = model(x1[mine], x2[mine])
        train = {"queue": model.ordered_queue(), "k": out.k, "ptr": int(model.queue_ptr), **seen}
        model = _moco().eval()  # eval-mode BN: per sample
        out, loss, grads = _step(model, x1[mine], x2[mine])
        torch.save({"train": train, "k": out.k, "loss": loss, "grads": grads, "queue": model.ordered_queue()},
                   f"{out_dir}/moco{rank}.pt")
    else:  # the trainer's DDP step (training/step.py): no buffer broadcast per step
        from hallucinator.presets import load_config
        from hallucinator.training import device_settings
        from hallucinator.training.step import build_step
        cfg = device_settings.resolve(load_config("smoke/mocov2-hal", ["width=4", "queue_size=64", "in_channels=1",
                                                                       "batch_size=8"]), torch.device("cpu"))
        torch.manual_seed(0)
        step = build_step(cfg, torch.device("cpu"), world_size=2, local_rank=rank)
        for _ in range(2):
            step(x1[mine, :1], x2[mine, :1], lr=0.01)
        bn = lambda: step.model.encoder.backbone.state_dict()["bn1.running_mean"].clone()  # noqa: E731
        before = bn()
        distributed.sync_buffers(step.model)
        torch.save({"broadcast_buffers": step.module.broadcast_buffers, "bn_before": before, "bn_after": bn(),
                    "queue": step.model.queue.clone()}, f"{out_dir}/ddp{rank}.pt")
    distributed.shutdown()


def _assert_grads_equal(dist_grads, model):
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert len(dist_grads) == len(grads)
    for g_dist, g in zip(dist_grads, grads):
        torch.testing.assert_close(g_dist, g, rtol=1e-4, atol=1e-6)


def test_simclr_gathered_negatives_give_the_one_process_loss_and_gradients(tmp_path):
    """2 gloo processes x N images == 1 process x 2N images (CPU, fp32; eval-mode BN so that only
    the loss couples the images): same Hallucinator lambda, loss (rel 1e-5), averaged gradients."""
    mp.spawn(_worker, args=(_free_port(), str(tmp_path), "simclr"), nprocs=2, join=True)
    model = _simclr()
    x1, x2 = _data()
    out = model(x1, x2)
    out.loss.backward()
    r0, r1 = (torch.load(tmp_path / f"simclr{r}.pt") for r in (0, 1))
    assert torch.equal(r0["lam"], r1["lam"]) and torch.equal(r0["lam"], out.lam)
    assert r0["loss"].item() == pytest.approx(out.loss.item(), rel=1e-5)
    _assert_grads_equal(r0["grads"], model)
    for a, b in zip(r0["grads"], r1["grads"]):
        assert torch.equal(a, b)


@pytest.fixture(scope="module")
def moco_runs(tmp_path_factory):
    """One 2-process MoCo v2 (+Hallucinator, shuffle-BN) step in train mode and one in eval mode."""
    out = tmp_path_factory.mktemp("moco")
    with cpu_only():  # set up before the autouse CPU pin of each test
        mp.spawn(_worker, args=(_free_port(), str(out), "moco"), nprocs=2, join=True)
    return [torch.load(out / f"moco{r}.pt") for r in (0, 1)]


def test_moco_shuffle_bn_restores_the_key_order(moco_runs):
    """Train mode (CPU, fp32): each process's keys equal the key encoder run on the two shards of
    the globally shuffled batch, put back in the unshuffled order; they differ from the keys of
    the unshuffled shards, so the shuffle did change what BN saw."""
    r0, r1 = (r["train"] for r in moco_runs)
    assert torch.equal(r0["unshuffle"], r1["unshuffle"])  # one permutation, drawn on rank 0
    perm = torch.argsort(r0["unshuffle"])
    ref = _moco()
    ref._momentum_update()  # what the step did before computing its keys
    _, x2 = _data()
    with torch.no_grad():
        shards = x2[perm].view(2, N, *x2.shape[1:])
        shuffled = torch.cat([ref.momentum_encoder(s) for s in shards])
        keys = torch.empty_like(shuffled)
        keys[perm] = shuffled
        keys = torch.nn.functional.normalize(keys, dim=1)
        plain = torch.nn.functional.normalize(torch.cat([ref.momentum_encoder(x2[:N]), ref.momentum_encoder(x2[N:])]), dim=1)
    torch.testing.assert_close(torch.cat([r0["k"], r1["k"]]), keys, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(keys, plain, atol=1e-4)


def test_moco_queue_holds_the_global_keys(moco_runs):
    """After one step both processes' queues end with the 2N gathered keys, rank order (CPU, fp32)."""
    r0, r1 = (r["train"] for r in moco_runs)
    assert r0["ptr"] == r1["ptr"] == 2 * N  # both processes' keys, each once
    assert torch.equal(r0["queue"], r1["queue"])
    torch.testing.assert_close(r0["queue"][-2 * N:], torch.cat([r0["k"], r1["k"]]))


def test_moco_two_processes_equal_one_process(moco_runs):
    """Eval-mode BN (per-sample, so only the loss couples images), CPU, fp32: 2 gloo processes x N
    images give the one-process keys (in order), loss, averaged gradients and queue on 2N images."""
    model = _moco().eval()
    x1, x2 = _data()
    out, _, _ = _step(model, x1, x2)
    r0, r1 = moco_runs
    torch.testing.assert_close(torch.cat([r0["k"], r1["k"]]), out.k, rtol=1e-5, atol=1e-6)
    assert r0["loss"].item() == pytest.approx(out.loss.item(), rel=1e-5)
    _assert_grads_equal(r0["grads"], model)
    torch.testing.assert_close(r0["queue"], model.ordered_queue())


def test_lambda_per_rank_is_seeded_and_differs_between_ranks(tmp_path):
    """``lambda_per_rank`` (the released code's per-rank draws, seeded here): 2 gloo processes draw
    different lambdas from one shared generator state, so a rank-0 checkpoint resumes every rank."""
    mp.spawn(_worker, args=(_free_port(), str(tmp_path), "lambda_per_rank"), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"lam{r}.pt") for r in (0, 1))
    assert (r0["lams"] != r1["lams"]).all() and torch.equal(r0["state"], r1["state"])


def test_trainer_ddp_step_broadcasts_no_buffers(tmp_path):
    """The trainer's DDP step (training/step.py) does not broadcast buffers each step: the MoCo queue is
    equal on both ranks by construction, BN statistics differ until ``distributed.sync_buffers``."""
    mp.spawn(_worker, args=(_free_port(), str(tmp_path), "ddp"), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"ddp{r}.pt") for r in (0, 1))
    assert r0["broadcast_buffers"] is False
    assert torch.equal(r0["queue"], r1["queue"])  # the same queue on both ranks without any broadcast
    assert not torch.equal(r0["bn_before"], r1["bn_before"])  # BN statistics of each rank's own data ...
    assert torch.equal(r0["bn_after"], r1["bn_after"]) and torch.equal(r1["bn_after"], r0["bn_before"])  # ... then rank 0's


@needs_fmnist
@pytest.mark.slow
def test_torchrun_two_processes_only_rank0_writes(tmp_path):
    import subprocess
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
           "-m", "hallucinator.pretrain", "--config", "smoke/simclr-hal", *TINY, "epochs=1", "knn_every=1",
           "augment_on=cpu", f"output_dir={tmp_path}", "run_name=r"]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    run = tmp_path / "r"
    # exactly the run directory's declared files, written once (rank 0): no per-rank copies
    assert sorted(p.name for p in run.iterdir()) == sorted([rundir.LOCK, rundir.CHECKPOINT, rundir.CONFIG, rundir.METRICS,
                                                            rundir.RUN, rundir.STEPS, rundir.TENSORBOARD])
    assert len({json.loads(x)["step"] for x in (run / rundir.STEPS).read_text().splitlines()}) == \
        len((run / rundir.STEPS).read_text().splitlines())
    info = json.loads((run / "run.json").read_text())
    assert info["world_size"] == 2 and info["status"] == "finished"
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1


# MoCo with shuffle-BN: a rank that leaves the loop alone leaves its peer in a collective for good.
STOP_ARGS = ["--config", "smoke/mocov2-hal", *TINY, "epochs=3", "knn_every=0", "augment_on=cpu", "diag_every=0",
             "run_name=r"]


def _launch_ranks(out, log_dir) -> list[subprocess.Popen]:
    """Two pretrain processes of one run, started as torchrun starts its workers (RANK, WORLD_SIZE...)."""
    port, procs = _free_port(), []
    for r in (0, 1):
        env = {**os.environ, "RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": str(port)}
        log = open(log_dir / f"rank{r}-{time.monotonic_ns()}.log", "w")
        procs.append(subprocess.Popen([sys.executable, "-m", "hallucinator.pretrain", *STOP_ARGS, f"output_dir={out}"],
                                      cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
    return procs


def _wait_all(procs, timeout=240) -> list[int]:
    deadline = time.time() + timeout
    try:
        return [p.wait(max(1.0, deadline - time.time())) for p in procs]
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        pytest.fail("the ranks did not all exit: a rank is stuck in a collective")


@pytest.fixture(scope="module")
def two_rank_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref")
    assert _wait_all(_launch_ranks(out, out)) == [0, 0], (out / "r").iterdir()
    return checkpoint.load(out / "r" / rundir.CHECKPOINT)


@needs_fmnist
@pytest.mark.slow
@pytest.mark.parametrize("signalled", [[1], [0], [1, 0]], ids=["rank1-only", "rank0-only", "both-at-different-steps"])
def test_a_signal_to_some_ranks_stops_all_at_one_step_and_resumes_bit_for_bit(tmp_path, two_rank_reference, signalled):
    procs = _launch_ranks(tmp_path, tmp_path)
    metrics = tmp_path / "r" / rundir.METRICS
    deadline = time.time() + 180
    while time.time() < deadline and not (metrics.exists() and metrics.read_text().count("\n") >= 1):
        time.sleep(0.05)
    time.sleep(0.3)  # into epoch 2 of 3
    assert all(p.poll() is None for p in procs), "the run ended before it could be interrupted"
    for i, r in enumerate(signalled):
        if i:
            time.sleep(0.15)  # a later signal lands some steps after the first
        procs[r].send_signal(signal.SIGTERM)
    assert _wait_all(procs) == [128 + signal.SIGTERM] * 2
    run = tmp_path / "r"
    assert sorted(p.name for p in run.iterdir() if ".pt" in p.name) == [rundir.CHECKPOINT]  # one, no temporaries
    state = checkpoint.load(run / rundir.CHECKPOINT)
    assert 1 <= state["epoch"] < 3
    assert json.loads((run / rundir.RUN).read_text())["status"] == "interrupted"
    assert _wait_all(_launch_ranks(tmp_path, tmp_path)) == [0, 0]
    assert json.loads((run / rundir.RUN).read_text())["status"] == "finished"
    assert_same_weights(two_rank_reference, checkpoint.load(run / rundir.CHECKPOINT))
    assert [json.loads(x)["epoch"] for x in (run / rundir.METRICS).read_text().splitlines()] == [1, 2, 3]
