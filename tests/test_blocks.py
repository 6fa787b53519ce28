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


def test_the_cpu_bf16_attention_is_the_formula():
    from s2lab.blocks import attention_bf16_cpu

    q, k, v = (torch.randn(2, 3, 7, 16, generator=torch.Generator().manual_seed(i)) for i in range(3))
    assert torch.allclose(attention_bf16_cpu(q, k, v), attention_formula(q, k, v), atol=1e-5)  # float32: the same
    half = attention_bf16_cpu(q.bfloat16(), k.bfloat16(), v.bfloat16())
    assert half.dtype == torch.bfloat16
    assert torch.allclose(half.float(), attention_formula(q, k, v), atol=3e-2)  # bf16's 8 significant bits


def test_attention_under_cpu_autocast_takes_the_bf16_path_and_agrees_with_float32():
    torch.manual_seed(0)
    attn = Attention(dim=32, heads=2)
    x = torch.randn(2, 9, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = attn(x)
    assert out.dtype == torch.bfloat16
    assert torch.allclose(out.float(), attn(x), atol=5e-2)
