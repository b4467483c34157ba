"""Two gloo processes on CPU: gathered SimCLR negatives, MoCo's shuffle-BN + global queue, and a
stop decision that all ranks agree on when only some of them are signalled."""
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

from engine_support import ROOT, TINY, assert_same_weights, needs_fmnist

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


def _worker(rank, port, out_dir, kind):
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    distributed.init(backend="gloo")
    torch.set_num_threads(1)
    x1, x2 = _data()
    mine = slice(rank * N, (rank + 1) * N)
    if kind == "simclr":
        model = _simclr()
        out = model(x1[mine], x2[mine])
        out.loss.backward()
        grads = [p.grad.clone() for p in model.parameters()]
        for g in grads:  # what DDP does: average over processes
            dist.all_reduce(g)
            g /= 2
        loss = distributed.all_reduce_mean(out.loss)
        torch.save({"loss": loss, "grads": grads, "lam": out.lam}, f"{out_dir}/simclr{rank}.pt")
    else:
        torch.manual_seed(0)
        model = build_method(ModelConfig(method="mocov2", width=4, queue_size=64, shuffle_bn=True))
        out = model(x1[mine], x2[mine])
        out.loss.backward()
        torch.save({"queue": model.ordered_queue(), "k": out.k, "ptr": int(model.queue_ptr)}, f"{out_dir}/moco{rank}.pt")
    distributed.shutdown()


@pytest.mark.parametrize("kind", ["simclr", "moco"])
def test_two_processes(tmp_path, kind):
    mp.spawn(_worker, args=(_free_port(), str(tmp_path), kind), nprocs=2, join=True)
    if kind == "simclr":
        model = _simclr()
        x1, x2 = _data()
        out = model(x1, x2)
        out.loss.backward()
        r0, r1 = (torch.load(tmp_path / f"simclr{r}.pt") for r in (0, 1))
        # the Hallucinator drew the same lambda in both processes
        assert torch.equal(r0["lam"], r1["lam"]) and torch.equal(r0["lam"], out.lam)
        assert r0["loss"].item() == pytest.approx(out.loss.item(), rel=1e-5)
        for g_dist, p in zip(r0["grads"], model.parameters()):
            torch.testing.assert_close(g_dist, p.grad, rtol=1e-4, atol=1e-6)
        for a, b in zip(r0["grads"], r1["grads"]):
            assert torch.equal(a, b)
    else:
        r0, r1 = (torch.load(tmp_path / f"moco{r}.pt") for r in (0, 1))
        assert r0["ptr"] == r1["ptr"] == 2 * N  # both processes' keys, each once
        assert torch.equal(r0["queue"], r1["queue"])
        torch.testing.assert_close(r0["queue"][-2 * N:], torch.cat([r0["k"], r1["k"]]))


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
