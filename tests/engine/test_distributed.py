"""Two gloo processes on CPU: gathered SimCLR negatives and MoCo's shuffle-BN + global queue."""
import json
import os
import socket
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from hallucinator import ModelConfig, build_method, distributed, rundir

from engine_support import ROOT, TINY, needs_fmnist

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
    elif kind == "moco":
        torch.manual_seed(0)
        model = build_method(ModelConfig(method="mocov2", width=4, queue_size=64, shuffle_bn=True))
        out = model(x1[mine], x2[mine])
        out.loss.backward()
        torch.save({"queue": model.ordered_queue(), "k": out.k, "ptr": int(model.queue_ptr)}, f"{out_dir}/moco{rank}.pt")
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


@pytest.mark.parametrize("kind", ["simclr", "moco", "ddp"])
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
    elif kind == "ddp":
        r0, r1 = (torch.load(tmp_path / f"ddp{r}.pt") for r in (0, 1))
        assert r0["broadcast_buffers"] is False
        assert torch.equal(r0["queue"], r1["queue"])  # the same queue on both ranks without any broadcast
        assert not torch.equal(r0["bn_before"], r1["bn_before"])  # BN statistics of each rank's own data ...
        assert torch.equal(r0["bn_after"], r1["bn_after"]) and torch.equal(r1["bn_after"], r0["bn_before"])  # ... then rank 0's
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
