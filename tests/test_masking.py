"""Masking strategies: exact kept counts, valid permutations, the structure each strategy promises, purity.

Property tests over random sizes: masks obey the MAE unshuffle contract and keep each strategy's structure at any
size, drawing a mask touches no global state, and every ratio outside [0, 1) is refused by every strategy.
"""

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from s2lab.masking import STRATEGIES, draw_mask, mask_from_removed, num_kept


def _gen(seed):
    return torch.Generator().manual_seed(seed)


@settings(max_examples=80, deadline=None)
@given(
    strategy=st.sampled_from(sorted(STRATEGIES)),
    B=st.integers(1, 3),
    G=st.integers(1, 6),
    N=st.integers(1, 40),
    ratio=st.floats(0.0, 0.99),
    seed=st.integers(0, 2**31),
)
def test_keeps_exactly_round_l_times_one_minus_ratio(strategy, B, G, N, ratio, seed):
    L = G * N
    if round(L * (1 - ratio)) < 1:
        with pytest.raises(ValueError, match="keeps no token"):
            draw_mask(strategy, B, G, N, ratio, generator=_gen(seed))
        return
    m = draw_mask(strategy, B, G, N, ratio, generator=_gen(seed))
    K = round(L * (1 - ratio))
    assert m.ids_keep.shape == (B, K) and m.ids_restore.shape == (B, L) and m.mask.shape == (B, L)
    assert (m.mask.sum(1) == L - K).all()
    kept = torch.zeros(B, L).scatter_(1, m.ids_keep, 1.0)
    assert torch.equal(kept, 1 - m.mask)  # ids_keep are exactly the unmasked tokens
    assert torch.equal(m.ids_restore.sort(1).values, torch.arange(L).expand(B, L))  # a permutation


def test_tube_and_consistent_remove_whole_spatial_columns():
    G, N = 4, 50
    for strategy in ("tube", "consistent"):
        m = draw_mask(strategy, 3, G, N, 0.6, generator=_gen(1)).mask.view(3, G, N)
        partial = ((m.sum(1) > 0) & (m.sum(1) < G)).sum(1)
        assert (partial <= 1).all()  # at most one column split to make the count exact


def test_spectral_removes_whole_groups():
    m = draw_mask("spectral", 2, 5, 30, 0.6, generator=_gen(2)).mask.view(2, 5, 30)
    per_group = m.sum(2)
    assert ((per_group == 0) | (per_group == 30)).sum(1).ge(4).all()  # all groups whole but at most one


def test_independent_is_satmaes_uniform_draw_over_every_group_token():
    """SatMAE's code draws independent masks over all G * L tokens at once: S2MAE's random on group tokens."""
    a = draw_mask("independent", 4, 3, 64, 0.75, generator=_gen(3))
    b = draw_mask("random", 4, 3, 64, 0.75, generator=_gen(3))
    assert torch.equal(a.mask, b.mask) and torch.equal(a.ids_keep, b.ids_keep)
    kept_per_group = 64 - a.mask.view(4, 3, 64).sum(2)
    assert (kept_per_group.max(1).values - kept_per_group.min(1).values > 1).any()  # shares differ between groups


def test_balanced_gives_every_group_the_same_share():
    G, N, ratio = 3, 64, 0.75
    m = draw_mask("balanced", 4, G, N, ratio, generator=_gen(3)).mask.view(4, G, N)
    kept_per_group = N - m.sum(2)
    assert (kept_per_group.max(1).values - kept_per_group.min(1).values <= 1).all()
    same_positions = (m[:, 0] == m[:, 1]).float().mean()
    assert same_positions < 0.9  # groups draw their own positions


def test_random_is_unstructured_and_pure():
    a = draw_mask("random", 2, 4, 64, 0.75, generator=_gen(7))
    b = draw_mask("random", 2, 4, 64, 0.75, generator=_gen(7))
    c = draw_mask("random", 2, 4, 64, 0.75, generator=_gen(8))
    assert torch.equal(a.mask, b.mask) and not torch.equal(a.mask, c.mask)
    columns = a.mask.view(2, 4, 64).sum(1)
    assert ((columns > 0) & (columns < 4)).any()  # some columns only partly removed


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5])
def test_ratio_outside_unit_interval_is_refused(ratio):
    with pytest.raises(ValueError, match=r"mask ratio must be in \[0, 1\)"):
        num_kept(100, ratio)


def test_unknown_strategy_lists_the_known_ones():
    with pytest.raises(ValueError, match="expected one of random, tube, consistent, independent, balanced, spectral"):
        draw_mask("checkerboard", 1, 2, 4, 0.5, generator=_gen(0))


def test_mask_from_removed_removes_exactly_the_marked_tokens():
    removed = torch.tensor([[True, False, True, False], [False, True, True, False]])
    mask = mask_from_removed(removed)
    assert torch.equal(mask.mask.bool(), removed) and mask.ids_keep.shape == (2, 2)
    assert torch.equal(mask.ids_keep.sort(dim=1).values, torch.tensor([[1, 3], [0, 3]]))
    with pytest.raises(ValueError, match=r"same number of tokens, at least one; kept \[2, 1\]"):
        mask_from_removed(torch.tensor([[True, False, True, False], [True, True, True, False]]))
    with pytest.raises(ValueError, match="at least one"):
        mask_from_removed(torch.ones(1, 4, dtype=torch.bool))


# -- properties over random sizes: the MAE unshuffle contract, each strategy's structure, no global state -----------
masks = {
    "strategy": st.sampled_from(sorted(STRATEGIES)),
    "B": st.integers(1, 3),
    "G": st.integers(1, 6),
    "N": st.integers(1, 30),
    "ratio": st.floats(0.0, 0.95),
    "seed": st.integers(0, 2**31),
}


@settings(max_examples=80, deadline=None)
@given(**masks)
def test_masks_obey_the_unshuffle_contract_and_touch_no_global_state(strategy, B, G, N, ratio, seed):
    assume(round(G * N * (1 - ratio)) >= 1)  # a mask keeping nothing is refused (test_masking.py)
    state = torch.random.get_rng_state()
    m = draw_mask(strategy, B, G, N, ratio, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(torch.random.get_rng_state(), state)  # only the generator passed in was used
    again = draw_mask(strategy, B, G, N, ratio, generator=torch.Generator().manual_seed(seed))
    assert all(torch.equal(a, b) for a, b in zip(m, again))
    L, K = G * N, num_kept(G * N, ratio)
    x = torch.randn(B, L, 3)
    kept = torch.gather(x, 1, m.ids_keep[..., None].expand(-1, -1, 3))  # (B, K, 3): what the encoder sees
    filler = torch.full((B, L - K, 3), float("inf"))  # the decoder's mask tokens
    restored = torch.gather(torch.cat([kept, filler], 1), 1, m.ids_restore[..., None].expand(-1, -1, 3))
    removed = m.mask.bool()[..., None].expand(-1, -1, 3)
    assert torch.equal(restored[~removed], x[~removed]) and torch.isinf(restored[removed]).all()


@settings(max_examples=80, deadline=None)
@given(**masks)
def test_each_strategy_keeps_its_structure_at_any_size(strategy, B, G, N, ratio, seed):
    assume(round(G * N * (1 - ratio)) >= 1)
    m = draw_mask(strategy, B, G, N, ratio, generator=torch.Generator().manual_seed(seed))
    grid = m.mask.view(B, G, N)  # 1 = removed
    per_column, per_group = grid.sum(1), grid.sum(2)  # (B, N) removed groups, (B, G) removed positions
    if strategy in ("tube", "consistent"):  # a position is removed in all groups or none, but for one split
        assert (((per_column > 0) & (per_column < G)).sum(1) <= 1).all()
    if strategy == "spectral":  # a group is removed at all positions or none, but for one split
        assert (((per_group > 0) & (per_group < N)).sum(1) <= 1).all()
    if strategy == "balanced":  # every group keeps the same share, to within one token
        assert ((per_group.max(1).values - per_group.min(1).values) <= 1).all()


@settings(max_examples=40, deadline=None)
@given(
    strategy=st.sampled_from(sorted(STRATEGIES)),
    ratio=st.one_of(st.floats(max_value=-1e-9), st.floats(min_value=1.0), st.just(float("nan"))),
)
def test_ratios_outside_the_unit_interval_are_refused_by_every_strategy(strategy, ratio):
    with pytest.raises(ValueError, match=r"mask ratio must be in \[0, 1\), got "):
        draw_mask(strategy, 1, 2, 8, ratio, generator=torch.Generator().manual_seed(0))
