"""The tiny models the tests share: one encoder block of width 32 on 32 px windows, built and run in milliseconds.

``TINY`` is the constructor arguments of ``S2MAE`` / ``SatMAE`` (add ``in_chans`` and the like as needed);
``TINY_FLAGS`` is the same size as ``s2lab pretrain`` options. ``SMALL`` is a little larger (two encoder blocks of width
64) for the model tests that train or compare models on real patches.
"""

TINY = {"img_size": 32, "patch_size": 8, "embed_dim": 32, "depth": 1, "num_heads": 2, "decoder_embed_dim": 32,
        "decoder_depth": 1, "decoder_num_heads": 2}
TINY_FLAGS = ["--embed-dim", "32", "--depth", "1", "--heads", "2", "--decoder-depth", "1", "--decoder-dim", "32"]
SMALL = {"img_size": 32, "embed_dim": 64, "depth": 2, "num_heads": 4, "decoder_embed_dim": 64, "decoder_depth": 1}
