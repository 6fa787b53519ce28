import io

import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.text import Text

from s2lab import diagrams
from s2lab.masking import draw_mask
from s2lab.models.fusmae import FUSMAEConfig


def texts(fig: Figure) -> str:
    """Every string drawn on the figure, titles included, one per line."""
    return "\n".join(t.get_text() for t in fig.findobj(Text) if t.get_text())


def draws(fig: Figure) -> Figure:
    assert isinstance(fig, Figure)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    assert buffer.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"
    return fig


def test_tokenization_diagram_states_the_sizes_it_was_given():
    text = texts(draws(diagrams.tokenization_diagram(C=10, s=2, p=8)))
    assert "G = ceil(C/s) = 5" in text and "N = (H/p)(W/p) = 16" in text and "L = 80 tokens" in text
    assert "p = 8 px" in text and "s = 2 bands" in text and "C = 10 bands" in text
    assert "g = 4: B11 B12" in text and "zero band" not in text  # s divides C: no padding
    assert "token l = g N + n = 1 x 16 + 6 = 22" in text  # the default token (1, 1, 2)

    text = texts(draws(diagrams.tokenization_diagram(C=13, s=4, p=16, H=64, W=48, token=(3, 3, 2))))
    assert "G = ceil(C/s) = 4" in text and "N = (H/p)(W/p) = 12" in text and "L = 48 tokens" in text
    assert "+ 3 zero bands" in text  # 13 bands in groups of 4: the last group holds 1 band and 3 zeros
    assert "H = 64 px" in text and "W = 48 px" in text and "P = s p² = 1024 values" in text
    assert "3 x 12 + 11 = 47" in text  # the last token


def test_tokenization_diagram_rejects_sizes_that_do_not_tile():
    with pytest.raises(ValueError, match="s = 11 must be between 1 and the C = 10"):
        diagrams.tokenization_diagram(C=10, s=11)
    with pytest.raises(ValueError, match="multiple of the patch side p = 8"):
        diagrams.tokenization_diagram(H=30)
    with pytest.raises(ValueError, match="outside the G x h x w = 5 x 4 x 4 grid"):
        diagrams.tokenization_diagram(token=(5, 0, 0))
    with pytest.raises(ValueError, match="p must be a positive integer"):
        diagrams.tokenization_diagram(p=0)


def test_satmae_groups_diagram_gives_each_group_its_own_embedding():
    text = texts(draws(diagrams.satmae_groups_diagram(p=8, D=128)))
    assert "G = 3 groups" in text
    assert text.count("Linear(256 -> 128)") == 2 and text.count("Linear(128 -> 128)") == 1  # 4, 4 and 2 bands
    assert "group 2: B11 B12" in text and "B08  833 nm" in text
    text = texts(draws(diagrams.satmae_groups_diagram([["B02", "B03"], ["B04"]], p=4, D=32)))
    assert "Linear(32 -> 32)" in text and "Linear(16 -> 32)" in text and "G = 2 groups" in text
    with pytest.raises(ValueError, match="more than one group"):
        diagrams.satmae_groups_diagram([["B02", "B03"], ["B03"]])


def removed_squares(fig: Figure) -> int:
    grey = to_rgba(diagrams.REMOVED)
    return sum(np.allclose(r.get_facecolor(), grey) for r in fig.findobj(Rectangle))


def test_mae_diagram_draws_the_mask_it_is_given():
    mask = draw_mask("random", 2, 3, 4, 0.5, generator=torch.Generator().manual_seed(3))
    fig = draws(diagrams.mae_diagram(3, 4, mask=mask, depth=4, embed_dim=128, decoder_depth=2, decoder_embed_dim=96))
    text = texts(fig)
    assert removed_squares(fig) == 6  # the 6 removed of L = 12, grey in the first row
    assert "K = 6 visible tokens" in text and "all L = 12 tokens" in text and "over the 6 removed tokens" in text
    assert "encoder: 4 blocks, width D = 128" in text and "decoder: 2 blocks, width 96" in text
    assert "mask" in text and "loss" in text
    # the encoder's row shows the kept tokens in ids_keep order, as the encoder sees them
    labels = [t.get_text() for t in fig.findobj(Text)]
    keep = [str(int(i)) for i in mask.ids_keep[0]]
    assert any(labels[i:i + 6] == keep for i in range(len(labels)))

    fig = diagrams.mae_diagram(2, 10, ratio=0.9)  # drawn by random_masking: K = round(20 * 0.1) = 2
    assert removed_squares(fig) == 18 and "kept K = 2" in texts(fig)


def test_mae_diagram_rejects_a_mask_of_another_grid_and_too_many_tokens():
    mask = draw_mask("random", 1, 3, 4, 0.5, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="G x N = 2 x 4 needs 8"):
        diagrams.mae_diagram(2, 4, mask=mask)
    with pytest.raises(ValueError, match="too many to draw"):
        diagrams.mae_diagram(5, 16)


@pytest.mark.parametrize("fusion", ["early", "feature", "both"])
def test_fusion_diagram_draws_cross_attention_where_the_config_fuses(fusion):
    config = FUSMAEConfig(img_size=48, patch_size=8, bands_per_token=2, fusion=fusion, modality_masking="independent")
    text = texts(draws(diagrams.fusion_diagram(config)))
    assert ("early fusion" in text) == (fusion in ("early", "both"))
    assert ("feature fusion" in text) == (fusion in ("feature", "both"))
    assert "5 x 36 cubes" in text and "1 x 36 tokens" in text  # G = 10 / 2 groups, N = (48 / 8)² positions
    assert "independent" in text and "Sentinel-1" in text and "shared\nencoder" in text


def test_fusion_diagram_rejects_an_unknown_fusion():
    with pytest.raises(ValueError, match="unknown fusion 'late'"):
        diagrams.fusion_diagram(FUSMAEConfig(fusion="late"))


def test_change_diagram_states_the_head_sizes():
    text = texts(draws(diagrams.change_diagram(C=13, p=16, D=64, hidden=24)))
    assert "(128, H/16, W/16)" in text  # |f1 - f2| and f1 + f2: 2 D channels
    assert "(39, H, W)" in text and "(48, H, W)" in text  # the pixel branch's 3 C; the fused 2 hidden
    assert "shared\nencoder" in text and "before\n(13, H, W)" in text and "sigmoid" in text
    with pytest.raises(ValueError, match="hidden must be a positive integer"):
        diagrams.change_diagram(hidden=0)


def test_masking_strategies_diagram_draws_the_librarys_masks():
    fig = draws(diagrams.masking_strategies_diagram(G=3, N=8, ratio=0.5, seed=4, strategies=("random", "tube")))
    panels = fig.axes
    assert len(panels) == 2
    for ax, name in zip(panels, ("random", "tube")):
        mask = draw_mask(name, 1, 3, 8, 0.5, generator=torch.Generator().manual_seed(4))
        removed = mask.mask[0].reshape(3, 8).bool().numpy()  # (G, N)
        grey = {(round(p.get_x()), round(p.get_y())) for p in ax.patches
                if isinstance(p, Rectangle) and p.get_facecolor() == to_rgba(diagrams.REMOVED)}
        # group g is drawn in row G - 1 - g, position n in column n
        assert grey == {(n, 2 - g) for g, n in zip(*np.nonzero(removed))}
        blind = int(removed.all(axis=0).sum())
        assert "kept K = 12 of 24" in ax.get_xlabel() and f"no group kept: {blind} of 8" in ax.get_xlabel()
    assert "tube" in panels[1].get_title() and "every group" in panels[1].get_title()
    with pytest.raises(ValueError, match="unknown masking strategies"):
        diagrams.masking_strategies_diagram(strategies=("random", "checkerboard"))
