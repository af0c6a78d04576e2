"""Shared test settings.

Tiny models gain nothing from several threads, and on a 2-core machine extra intra-op threads
only fight with whatever else runs, so the suite runs single-threaded.
"""

import torch

torch.set_num_threads(1)
