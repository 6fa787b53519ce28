"""Architecture diagrams drawn by code: each function returns a matplotlib ``Figure`` built from the sizes it is given.

- ``tokenization_diagram``: a (C, H, W) image cut into p x p x s cube tokens (S2MAE's 3D tokenization).
- ``satmae_groups_diagram``: SatMAE's band groups, each with its own patch embedding.
- ``masking_strategies_diagram``: the G x N token grid under each masking strategy, removed tokens grey.
- ``mae_diagram``: masked-autoencoder pretraining on G x N tokens: visible tokens -> encoder -> mask tokens
  inserted -> decoder -> loss on the removed tokens only.
- ``fusion_diagram``: FUS-MAE, Sentinel-2 and Sentinel-1 tokens meeting by cross-attention (early, feature, both).
- ``change_diagram``: the siamese change detector (``s2lab.models.ChangeDetector``).

Every label states the numbers it was drawn with, so a diagram drawn from a model's config describes that model. The
figures are plain ``matplotlib.figure.Figure`` objects, not registered with pyplot: a notebook shows one by ending a
cell with it, once, and nothing else is drawn. matplotlib comes with the lab extra.

The package holds ``tokens`` (how an image becomes tokens), ``masks`` (which tokens go), ``architectures`` (the models block by block) and ``_draw``
(the colours and shapes they share).
"""

from s2lab.diagrams._draw import GROUP_COLOURS, HIGHLIGHT, REMOVED
from s2lab.diagrams.architectures import change_diagram, fusion_diagram, mae_diagram
from s2lab.diagrams.masks import masking_strategies_diagram
from s2lab.diagrams.tokens import satmae_groups_diagram, tokenization_diagram

__all__ = ["GROUP_COLOURS", "HIGHLIGHT", "REMOVED", "change_diagram", "fusion_diagram", "mae_diagram",
           "masking_strategies_diagram", "satmae_groups_diagram", "tokenization_diagram"]
