"""Blocks: fused attention equals the written-out formula; blocks keep shapes; cross-attention needs a context."""

import pytest
import torch

from s2lab.blocks import Attention, Block, attention_formula


def test_sdpa_equals_the_formula():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 3, 7, 16), torch.randn(2, 3, 11, 16), torch.randn(2, 3, 11, 16)
    by_hand = (q @ k.transpose(-2, -1) / 4.0).softmax(-1) @ v
    assert torch.allclose(attention_formula(q, k, v), by_hand)
    assert torch.allclose(torch.nn.functional.scaled_dot_product_attention(q, k, v), by_hand, atol=1e-5)


@pytest.mark.parametrize("cross", [False, True])
def test_fused_and_written_out_attention_agree_in_a_module(cross):
    torch.manual_seed(1)
    fused = Attention(dim=32, heads=4, fused=True)
    plain = Attention(dim=32, heads=4, fused=False)
    plain.load_state_dict(fused.state_dict())
    x, ctx = torch.randn(2, 9, 32), torch.randn(2, 5, 32)
    context = ctx if cross else None
    assert torch.allclose(fused(x, context), plain(x, context), atol=1e-5)


def test_blocks_keep_shapes_and_cross_blocks_need_context():
    x, ctx = torch.randn(2, 9, 32), torch.randn(2, 4, 32)
    assert Block(dim=32, heads=4)(x).shape == (2, 9, 32)
    block = Block(dim=32, heads=4, cross=True)
    assert block(x, ctx).shape == (2, 9, 32)
    with pytest.raises(ValueError, match="needs a context"):
        block(x)
    with pytest.raises(ValueError, match="width 30 is not divisible by 4 heads"):
        Attention(dim=30, heads=4)
