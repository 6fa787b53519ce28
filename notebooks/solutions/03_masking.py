"""Solutions to the exercises of notebook 03, Masking strategies. Run: python notebooks/solutions/03_masking.py"""

import math

import torch

from s2lab import exercises, masking

G, N, ratio = 5, 256, 0.75  # the shipped S2MAE's grid on a 128 x 128 crop
L, K = G * N, masking.num_kept(G * N, ratio)

# 1. How often random 3D masking removes a position in all G groups. Each token is removed with probability 0.75,
#    nearly independently (exactly K are kept, so the draws are slightly negatively correlated): about 0.75^5 = 0.237.
#    Tube masking removes a position everywhere or nowhere, so 75 % of positions lose every group.
generator = torch.Generator().manual_seed(0)
shares = {}
for name in ("random", "tube"):
    gone = [masking.draw_mask(name, 1, G, N, ratio, generator=generator).mask.view(G, N).min(0).values.mean()
            for _ in range(200)]
    shares[name] = float(torch.stack(gone).mean())
exact = math.comb(L - G, L - K - G) / math.comb(L, L - K)  # all G tokens of a position among the L - K removed
print(f"random: {shares['random']:.4f} (0.75^5 = {0.75**5:.4f}, exact {exact:.4f}); tube: {shares['tube']:.4f}")
assert abs(shares["random"] - exact) < 0.01
assert shares["tube"] == 0.75
mine = exercises.data("03.1")  # this student's grid and ratio
estimate = float(torch.stack([
    masking.draw_mask("random", 1, mine["G"], mine["N"], mine["ratio"], generator=generator)
    .mask.view(mine["G"], mine["N"]).min(0).values.mean() for _ in range(200)]).mean())
print(f"your grid G = {mine['G']}, ratio {mine['ratio']}: {estimate:.4f} (ratio^G = {mine['ratio'] ** mine['G']:.4f})")
assert exercises.check("03.1", estimate)

# 2. Tube masking by hand: random masking of the N positions, repeated over the G groups (group-major tokens).
def tube_by_hand(batch: int, groups: int, spatial: int, ratio: float, generator: torch.Generator) -> torch.Tensor:
    kept = round(groups * spatial * (1 - ratio))
    assert kept % groups == 0, "this simple version needs G to divide K"
    noise = torch.rand(batch, spatial, generator=generator)  # (B, N)
    keep_positions = torch.argsort(noise, dim=1)[:, : kept // groups]  # (B, K / G)
    position_mask = torch.ones(batch, spatial).scatter(1, keep_positions, 0.0)  # (B, N), 1 = removed
    return position_mask.repeat(1, groups)  # (B, G * N)


for seed in range(5):
    mine = tube_by_hand(3, G, N, ratio, torch.Generator().manual_seed(seed))
    theirs = masking.tube_masking(3, G, N, ratio, generator=torch.Generator().manual_seed(seed)).mask
    assert torch.equal(mine, theirs)
print("tube masking by hand equals masking.tube_masking")

# 3. A block's per-token layers cost 12 K D^2, its attention 2 K^2 D: equal at K = 6 D.
D, p = 128, 8
K_equal = 6 * D
print("attention = per-token layers at K =", K_equal)
for r in (0.75, 0.9):
    tokens = K_equal / (1 - r)  # L with round(L (1 - r)) = K
    side = p * math.sqrt(tokens / G)  # N = (side / p)^2 positions, L = G N
    print(f"ratio {r}: L = {tokens:.0f} tokens, a square crop of about {side:.0f} pixels")
    whole = p * math.ceil(side / p)  # the smallest multiple of p at least that large
    assert masking.num_kept(G * (whole // p) ** 2, r) >= K_equal
mine = exercises.data("03.3")  # this student's width and ratio
side = mine["p"] * math.floor(math.sqrt((6 * mine["D"] - 1) / (1 - mine["ratio"]) / mine["G"]))  # below: K - 1 at most
while masking.num_kept(mine["G"] * (side // mine["p"]) ** 2, mine["ratio"]) < 6 * mine["D"]:
    side += mine["p"]
print(f"your D = {mine['D']}, ratio {mine['ratio']}: K = {6 * mine['D']}, crop side {side} px")
assert exercises.check("03.3", (6 * mine["D"], side))
