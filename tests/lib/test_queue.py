"""MoCo's queue holds exactly the last K keys, in order, for any batch size."""
import pytest
import torch

from hallucinator import ModelConfig, build_method


@pytest.mark.parametrize("batches", [[3, 5, 7, 2], [8, 8], [11], [1, 1, 1]])
def test_queue_holds_last_keys_in_order(batches):
    model = build_method(ModelConfig(method="mocov2", width=4, dim=4, queue_size=8))
    seen = []
    for i, b in enumerate(batches):
        keys = torch.arange(i * 100, i * 100 + b, dtype=torch.float32)[:, None].repeat(1, 4)
        model.enqueue(keys)
        seen.extend(keys[:, 0].tolist())
        if len(seen) >= 8:
            assert model.ordered_queue()[:, 0].tolist() == seen[-8:]


def test_forward_enqueues_each_key_once():
    torch.manual_seed(0)
    model = build_method(ModelConfig(method="mocov2", width=4, queue_size=10, hallucinator=True))
    x = torch.randn(3, 3, 16, 16)
    out = model(x, x.flip(-1))
    assert int(model.queue_ptr) == 3  # 3 keys, not 6: no K % 2N restriction
    assert torch.allclose(model.ordered_queue()[-3:], out.k)
    out = model(torch.randn(3, 3, 16, 16), torch.randn(3, 3, 16, 16))
    assert int(model.queue_ptr) == 6 and torch.allclose(model.ordered_queue()[-3:], out.k)
