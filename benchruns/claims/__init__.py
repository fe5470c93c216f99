"""The claims of the usual TensorFlow-versus-PyTorch comparison, judged on one run.

One module per question: ``graph`` (claims 1-4), ``pipeline`` (5), ``transfer`` (6);
``common`` holds what they share and says how a comparison and a verdict are decided.
Each ``claim_N`` takes the run's benchmarks (a ``Benches``) and returns a ``Claim``.
Nothing here draws or formats pages (report_plots.py and report.py do), and nothing
imports a framework. A new claim is a module with a ``claim_N`` function listed in CLAIMS.
"""

from .common import *  # noqa: F401,F403
from .common import Benches, Claim
from .graph import claim_1, claim_2, claim_3, claim_4, crossover, graph_index, best_graph  # noqa: F401
from .pipeline import _scaling_points, claim_5  # noqa: F401
from .transfer import claim_6  # noqa: F401
from .distributed import claim_7  # noqa: F401
from .api_levels import claim_8  # noqa: F401

CLAIMS = [claim_1, claim_2, claim_3, claim_4, claim_5, claim_6, claim_7, claim_8]


def judge(benches: Benches) -> list[Claim]:
    claims = [fn(benches) for fn in CLAIMS]
    for c in claims:
        if c.excluded or any("[suspect" in f for f in c.findings):
            c.notes.extend(n for n in benches.notes if n not in c.notes)
    return claims
