"""Solutions to the exercises of notebook 02, 3D tokenization. Run: python notebooks/solutions/02_tokenization.py"""

import torch

from s2lab import exercises, pos_embed, tokenize
from s2lab.sensors import S2_13BANDS, wavelengths

# 1. (p, s) for a 120 x 120 tile of 10 bands with 200 <= L <= 800.
C, H, W = 10, 120, 120
fits = [(p, s, -(-C // s) * (H // p) * (W // p)) for p in (4, 8, 10, 12, 20) for s in range(1, C + 1) if H % p == 0]
print([(p, s, L) for p, s, L in fits if 200 <= L <= 800])
mine = exercises.data("02.1")  # this student's tile and token budget
image = torch.zeros(1, mine["C"], mine["H"], mine["H"])
pairs = [(p, s) for p in mine["patch_sizes"] if mine["H"] % p == 0 for s in range(1, mine["C"] + 1)
         if mine["low"] <= tokenize.patchify(image, p, s).shape[1] <= mine["high"]]
print(f"your tile ({mine['C']} bands, {mine['H']} px), {mine['low']}..{mine['high']} tokens:", pairs)
assert exercises.check("02.1", pairs)

# 2. The shared token projection is a 3D convolution with kernel = stride = (s, p, p).
p, s, D = 8, 2, 16
x = torch.rand(2, C, 32, 32)
embed = tokenize.TokenEmbed(tokens_dim=s * p * p, dim=D)
conv = torch.nn.Conv3d(1, D, kernel_size=(s, p, p), stride=(s, p, p))
with torch.no_grad():
    conv.weight.copy_(embed.weight.T.reshape(D, 1, s, p, p))
    conv.bias.copy_(embed.bias)
    by_linear = embed(tokenize.patchify(x, p, s))  # (B, L, D)
    by_conv = conv(x[:, None]).flatten(2).transpose(1, 2)  # (B, G * h * w, D), group-major
assert torch.allclose(by_linear, by_conv, atol=1e-5)

# 3. Most similar band by wavelength embedding (D_spec = 16). For most bands it is a neighbour in wavelength, since the
#    embedding encodes wavelength / 100 nm (pos_embed.WAVELENGTH_SCALE_NM) and bands a few tens of nm apart get nearly
#    the same code. Not for all: the fast sinusoids wrap around, so similarity is not monotone in distance beyond a
#    few hundred nm, and B10 (1374 nm) comes out closest to B07 (783 nm), not to B11 (1614 nm); the assert below
#    checks it. Notebook 01's correlation also groups by material response (the red-edge and NIR bands move
#    together), which wavelength alone cannot know.
table = pos_embed.SpatialSpectralEmbedding(kind="wavelength", dim=64, grid=(1, 1), groups=1)
codes = table.spectral_table(torch.tensor(wavelengths(S2_13BANDS)))
sim = torch.nn.functional.cosine_similarity(codes[:, None], codes[None], dim=-1)
sim.fill_diagonal_(-2)
for i, name in enumerate(S2_13BANDS):
    print(name, "->", S2_13BANDS[int(sim[i].argmax())])
b07, b10, b11 = (S2_13BANDS.index(n) for n in ("B07", "B10", "B11"))
assert sim[b10, b07] > sim[b10, b11]  # 591 nm away beats 240 nm away: the codes alias beyond a few hundred nm
mine = exercises.data("02.3")  # this student's embedding width: the neighbours change with it
own = pos_embed.SpatialSpectralEmbedding(kind=mine["kind"], dim=mine["dim"], grid=(1, 1), groups=1)
own_codes = own.spectral_table(torch.tensor(wavelengths(S2_13BANDS)))
own_sim = torch.nn.functional.cosine_similarity(own_codes[:, None], own_codes[None], dim=-1).fill_diagonal_(-2)
nearest = {name: S2_13BANDS[int(own_sim[i].argmax())] for i, name in enumerate(S2_13BANDS)}
print(f"your dim {mine['dim']}:", nearest)
assert exercises.check("02.3", nearest)
