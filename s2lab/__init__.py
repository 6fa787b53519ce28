"""s2lab: a teaching lab for spatial-spectral masked autoencoders on satellite imagery.

Shape glossary, used in every docstring: B batch, T times, C bands, H, W pixels, p patch size,
s bands per token, G spectral groups, N spatial tokens, L tokens (G * N), K kept tokens, D width.
See docs/internals.md for the module map.
"""

__version__ = "0.1.0"
