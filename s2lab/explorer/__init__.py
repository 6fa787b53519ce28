"""The explorer app's state: what every view of ``apps/explorer.py`` shows, computed by s2lab, without panel.

    sources   ``Source``: the embedded scene or a user's upload (``read_upload``, refusing with ``UploadError``)
    models    the shipped models by role (``MODELS``, ``model``), on ``device()``
    pairs     ``ScoredPair``: the change view's pair and probability map, computed on a background thread
    views     what each view draws, one frozen dataclass per view (``SceneView`` to ``ChangeView``)
    presets   ``read_query``: a link's URL query (``?tab=reconstruct&ratio=0.9``) read and checked (``QUERY``)
    state     ``Explorer``: one session's input parameters, and the outputs its watchers compute from them

What does not depend on a session is loaded once per process and shared read-only: the embedded scene, the three
shipped models, the default change pair and its probability map (computed on a background thread, since a whole
OSCD city takes seconds). What a session does is its own: each ``Explorer`` holds its own source (an upload is
never seen by another session), parameters and outputs. The pictures are drawn by ``s2lab.viz``.
"""

from s2lab.explorer.models import MODELS, describe_groups, device, model
from s2lab.explorer.pairs import ScoredPair, default_change_future, default_change_pair
from s2lab.explorer.sources import BANDS, CROP, MAX_UPLOAD_MB, Source, UploadError, embedded_source, read_upload
from s2lab.explorer.presets import QUERY, Preset, read_query
from s2lab.explorer.state import TABS, Explorer
from s2lab.explorer.views import ChangeView, ReconstructionView, SceneView, SpectrumView, TokenView

__all__ = [
    "BANDS",
    "CROP",
    "MAX_UPLOAD_MB",
    "MODELS",
    "QUERY",
    "TABS",
    "ChangeView",
    "Explorer",
    "Preset",
    "ReconstructionView",
    "SceneView",
    "ScoredPair",
    "Source",
    "SpectrumView",
    "TokenView",
    "UploadError",
    "default_change_future",
    "default_change_pair",
    "describe_groups",
    "device",
    "embedded_source",
    "model",
    "read_query",
    "read_upload",
]
