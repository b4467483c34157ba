"""Reference tests (issue 10 item 2): each method with the Hallucinator against a small reference
written here from the released code's formulas, on the same tensors, weights and lambdas.

The reference re-implements the method's arithmetic (Eq 3-4, the losses and how the released code
combines the pairs) with plain tensor ops; only the backbone/heads are copied modules (they are not
what is under test). Loss and every gradient must agree to 1e-5.
"""
import copy

import pytest
import torch
import torch.nn.functional as F

from hallucinator import ModelConfig, build_method

ATOL = 1e-5


def _views(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 12, 12, generator=g), torch.randn(n, 1, 12, 12, generator=g)


def _fixed_lambdas(model, values):
    """Makes the project's Hallucinator use ``values`` in order (one per call)."""
    it = iter(torch.tensor(v) for v in values)
    model.hallucinator.sample_lambda = lambda n: next(it)


def _h_weights(model):
    """H's Linear layers as (weight, bias) leaf tensors for the reference."""
    return [(m.weight.detach().clone().requires_grad_(), m.bias.detach().clone().requires_grad_())
            for m in model.hallucinator.net if isinstance(m, torch.nn.Linear)]


def ref_hallucinate(layers, q, k, lam):
    """Eq 3-4: x = [q, (1+lam) q - lam k], then Linear-ReLU-...-Linear."""
    x = torch.cat([q, (1 + lam) * q - lam * k], dim=1)
    for i, (w, b) in enumerate(layers):
        x = x @ w.T + b
        if i < len(layers) - 1:
            x = torch.relu(x)
    return x


def ref_nt_xent(a, b, t):
    """The released NT-Xent: 2M views, positive at +-M, self and positive masked out of the negatives."""
    m = a.shape[0]
    z = F.normalize(torch.cat([a, b]), dim=1)
    sim = z @ z.T / t
    pos = torch.cat([torch.diagonal(sim, m), torch.diagonal(sim, -m)]).unsqueeze(1)       # 2M x 1
    mask = torch.ones(2 * m, 2 * m, dtype=torch.bool)
    mask.fill_diagonal_(False)
    idx = torch.arange(m)
    mask[idx, idx + m] = mask[idx + m, idx] = False
    neg = sim[mask].view(2 * m, 2 * m - 2)
    logits = torch.cat([pos, neg], dim=1)
    return F.cross_entropy(logits, torch.zeros(2 * m, dtype=torch.long), reduction="sum") / (2 * m)


def _assert_grads(pairs):
    for name, mine, ref in pairs:
        assert mine is not None and ref is not None, name
        assert torch.allclose(mine, ref, atol=ATOL, rtol=1e-4), f"{name}: max diff {(mine - ref).abs().max():.2e}"


def _module_grads(model_mod, ref_mod, prefix):
    return [(f"{prefix}.{n}", p.grad, rp.grad) for (n, p), rp in zip(model_mod.named_parameters(), ref_mod.parameters())]


def _h_grads(model, layers):
    lin = [m for m in model.hallucinator.net if isinstance(m, torch.nn.Linear)]
    return [(f"H{i}.{n}", getattr(m, n).grad, t.grad) for i, (m, (w, b)) in enumerate(zip(lin, layers))
            for n, t in (("weight", w), ("bias", b))]


@pytest.mark.parametrize("method", ["mocov1", "mocov2"])
def test_moco_matches_released_formulas(method):
    torch.manual_seed(0)
    model = build_method(ModelConfig(method=method, width=4, in_channels=1, hallucinator=True, queue_size=40,
                                     shuffle_bn=False, moco_momentum=0.99))
    enc, menc, layers, queue = copy.deepcopy(model.encoder), copy.deepcopy(model.momentum_encoder), _h_weights(model), model.queue.clone()
    _fixed_lambdas(model, [0.07])
    x1, x2 = _views()
    out = model(x1, x2)
    out.loss.backward()
    # reference: momentum update, un-normalised q, normalised k; keys duplicated, CE over 2N rows
    with torch.no_grad():
        for pk, pq in zip(menc.parameters(), enc.parameters()):
            pk.mul_(0.99).add_(pq, alpha=0.01)
        k = F.normalize(menc(x2), dim=1)
    q = enc(x1)
    q_hat = ref_hallucinate(layers, q, k, 0.07)
    qs, ks = F.normalize(torch.cat([q, q_hat]), dim=1), torch.cat([k, k])
    logits = torch.cat([(qs * ks).sum(1, keepdim=True), qs @ queue.T], dim=1) / model.temperature
    ref = F.cross_entropy(logits, torch.zeros(2 * q.shape[0], dtype=torch.long))
    ref.backward()
    assert out.loss.item() == pytest.approx(ref.item(), abs=ATOL)
    _assert_grads(_module_grads(model.encoder, enc, "encoder") + _h_grads(model, layers))
    # the released code enqueued k twice; the project enqueues it once unless moco_enqueue_twice
    assert torch.allclose(model.ordered_queue()[-8:], k, atol=1e-6)
    assert torch.equal(model.ordered_queue()[-16:-8], queue[32:40])   # the 8 before are old keys, not k again


def test_moco_enqueue_twice_is_the_released_queue():
    torch.manual_seed(0)
    model = build_method(ModelConfig(method="mocov2", width=4, in_channels=1, hallucinator=True, queue_size=40,
                                     shuffle_bn=False, moco_enqueue_twice=True))
    out = model(*_views())
    assert torch.allclose(model.ordered_queue()[-16:], torch.cat([out.k, out.k]), atol=1e-6)


@pytest.mark.parametrize("released", [False, True])
def test_simclr_matches_released_formulas(released):
    torch.manual_seed(0)
    extra = dict(base_temperature=0.07, proj_batch_norm=False, fuse_pairs=True) if released else {}
    model = build_method(ModelConfig(method="simclr", width=4, in_channels=1, hallucinator=True, **extra))
    enc, layers = copy.deepcopy(model.encoder), _h_weights(model)
    _fixed_lambdas(model, [0.05])
    x1, x2 = _views()
    out = model(x1, x2)
    out.loss.backward()
    z1, z2 = enc(x1), enc(x2)                       # one forward per view, as the released Hallucinator runs
    q_hat = ref_hallucinate(layers, z1, z2, 0.05)
    if released:   # one NT-Xent over [q; q_hat] vs [k; k], times T / base_T
        ref = ref_nt_xent(torch.cat([z1, q_hat]), torch.cat([z2, z2]), 0.5) * 0.5 / 0.07
    else:          # each pair its own NT-Xent, averaged (Sec 3.1)
        ref = 0.5 * (ref_nt_xent(z1, z2, 0.5) + ref_nt_xent(q_hat, z2, 0.5))
    ref.backward()
    assert out.loss.item() == pytest.approx(ref.item(), abs=ATOL)
    _assert_grads(_module_grads(model.encoder, enc, "encoder") + _h_grads(model, layers))


def test_simsiam_hallucinates_both_predictor_outputs_as_released():
    torch.manual_seed(0)
    model = build_method(ModelConfig(method="simsiam", width=4, in_channels=1, hallucinator=True, dim=16, pred_hidden=8))
    enc, pred, layers = copy.deepcopy(model.encoder), copy.deepcopy(model.predictor), _h_weights(model)
    _fixed_lambdas(model, [0.02, 0.09])       # two draws: p1_hat first, then p2_hat
    x1, x2 = _views()
    out = model(x1, x2)
    out.loss.backward()
    z1, z2 = enc(x1), enc(x2)
    p1, p2 = pred(z1), pred(z2)
    p1_hat = ref_hallucinate(layers, p1, p2, 0.02)
    p2_hat = ref_hallucinate(layers, p2, p1, 0.09)
    # released: predictions and hallucinations stacked against duplicated, detached z
    pa, pb = torch.cat([p1, p1_hat]), torch.cat([p2, p2_hat])
    za, zb = torch.cat([z1, z1]).detach(), torch.cat([z2, z2]).detach()
    ref = -0.5 * (F.cosine_similarity(pa, zb, dim=1).mean() + F.cosine_similarity(pb, za, dim=1).mean())
    ref.backward()
    assert out.loss.item() == pytest.approx(ref.item(), abs=ATOL)
    _assert_grads(_module_grads(model.encoder, enc, "encoder") + _module_grads(model.predictor, pred, "predictor")
                  + _h_grads(model, layers))


def test_simsiam_query_only_option_counts_the_key_term_twice():
    torch.manual_seed(0)
    model = build_method(ModelConfig(method="simsiam", width=4, in_channels=1, hallucinator=True, dim=16,
                                     pred_hidden=8, hallucinate_views="query"))
    enc, pred, layers = copy.deepcopy(model.encoder), copy.deepcopy(model.predictor), _h_weights(model)
    _fixed_lambdas(model, [0.04])
    x1, x2 = _views()
    out = model(x1, x2)
    z1, z2 = enc(x1), enc(x2)
    p1, p2 = pred(z1), pred(z2)
    p1_hat = ref_hallucinate(layers, p1, p2, 0.04)
    d = lambda p, z: -F.cosine_similarity(p, z.detach(), dim=1).mean()  # noqa: E731
    ref = 0.5 * (0.5 * (d(p1, z2) + d(p2, z1)) + 0.5 * (d(p1_hat, z2) + d(p2, z1)))
    assert out.loss.item() == pytest.approx(ref.item(), abs=ATOL)
