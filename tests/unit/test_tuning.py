"""The training's MaxSim shortcut, the held-back significance test and the stable split."""

import numpy as np
import torch

from smartcli.search.scoring import Weights, maxsim
from smartcli.search.tuning import Measured, Pair, _maxsim_by_argmax, significantly_better, split_pairs


def test_maxsim_by_argmax_equals_maxsim_in_value_and_gradient():
    torch.manual_seed(0)
    docs = torch.nn.functional.normalize(torch.randn(60, 24), dim=-1)
    lengths, q_lengths = torch.tensor([10, 30, 1, 19]), torch.tensor([3, 5])
    queries = torch.nn.functional.normalize(torch.randn(8, 24), dim=-1)
    a, b = queries.clone().requires_grad_(), queries.clone().requires_grad_()
    x, y = maxsim(a, docs, lengths, q_lengths), _maxsim_by_argmax(b, docs, lengths, q_lengths)
    torch.testing.assert_close(x, y)
    weights = torch.arange(8.0).view(2, 4)
    (x * weights).sum().backward()
    (y * weights).sum().backward()
    torch.testing.assert_close(a.grad, b.grad)


def test_a_gain_must_stand_out_of_the_held_back_noise():
    w = Weights()
    base = Measured(w, 0.5, 0.5, np.array([0.5, 0.6, 0.4, 0.5, 0.5, 0.6, 0.4, 0.5]))
    noisy = Measured(w, 0.5, 0.5, base.per_pair + np.array([0.5, -0.4, 0.3, -0.3, 0.2, -0.1, 0.0, 0.1]))
    steady = Measured(w, 0.5, 0.5, base.per_pair + np.array([0.1, 0.2, 0.1, 0.0, 0.1, 0.2, 0.1, 0.1]))
    assert not significantly_better(noisy, base) and significantly_better(steady, base)
    assert not significantly_better(base, base) and not significantly_better(base, steady)


def test_the_split_is_stable_and_holds_back_about_a_quarter():
    pairs = [Pair(f"heading {i}", {("/a.pdf", i)}) for i in range(400)]
    train, held = split_pairs(pairs)
    assert (train, held) == split_pairs(list(pairs))
    assert 70 <= len(held) <= 130 and len(train) + len(held) == 400
    assert split_pairs(pairs[:2])[1]  # something is always held back
