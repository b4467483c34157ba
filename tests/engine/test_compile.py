"""compile=true (training/step.py): the same losses as eager, exact resume, one compilation per
encoder however the Hallucinator's Python state changes. Backend aot_eager: dynamo's tracing and
guards (what decides recompilation) without inductor's code generation, which takes minutes here."""
import copy

import pytest
import torch
from torch._dynamo.utils import counters

from hallucinator.presets import load_config
from hallucinator.training import device_settings, step as step_module
from hallucinator.training.step import build_step

pytestmark = pytest.mark.slow
CPU = torch.device("cpu")
# the warmup variant changes the extra pair's weight every step: Python state that must not recompile
OVERRIDES = ["width=4", "batch_size=8", "queue_size=64", "hallucinator_preset=warmup", "hallucinator_warmup_steps=3"]


@pytest.fixture(autouse=True)
def aot_eager(monkeypatch):
    monkeypatch.setattr(step_module, "COMPILE_BACKEND", "aot_eager")
    torch._dynamo.reset()
    counters.clear()
    yield
    torch._dynamo.reset()


def _step(compile_: bool):
    cfg = device_settings.resolve(load_config("smoke/mocov2-hal", [*OVERRIDES, f"compile={str(compile_).lower()}"]), CPU)
    torch.manual_seed(0)
    return build_step(cfg, CPU)


def _batches(n):
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(8, 1, 28, 28, generator=g), torch.randn(8, 1, 28, 28, generator=g)) for _ in range(n)]


def _losses(step, batches):
    return [step(x1, x2, lr=0.05).loss.item() for x1, x2 in batches]


def test_compiled_step_matches_eager_and_compiles_once():
    torch.set_num_threads(1)
    batches = _batches(5)
    eager = _losses(_step(False), batches)
    compiled = _step(True)
    assert list(compiled.model.state_dict()) == list(_step(False).model.state_dict())  # checkpoints unchanged
    first = _losses(compiled, batches[:2])
    frames = counters["stats"]["unique_graphs"]
    assert frames >= 2  # the query and the key encoder really were compiled
    rest = _losses(compiled, batches[2:])
    assert counters["stats"]["unique_graphs"] == frames, "a later step recompiled"
    assert compiled.model.hallucinator._calls == 5 and compiled.model.hallucinator.last_weight == 1.0
    assert first + rest == pytest.approx(eager, abs=1e-5)


def test_compiled_step_resumes_exactly():
    torch.set_num_threads(1)
    batches = _batches(4)
    a = _step(True)
    _losses(a, batches[:2])
    state = copy.deepcopy({"model": a.model.state_dict(), "optimizer": a.optimizer.state_dict()})
    rng = torch.get_rng_state()
    uninterrupted = _losses(a, batches[2:])
    b = _step(True)
    b.model.load_state_dict(state["model"])
    b.optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(rng)
    assert _losses(b, batches[2:]) == uninterrupted
