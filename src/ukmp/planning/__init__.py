"""Planning: from per-unit scores to the units each group keeps, at a target ratio.

- ``global_schedule``: the plan types (``GroupCost``, ``PlanResult``), ranking and the one-shot
  global schedule (lowest scores go first, across every group);
- ``iterative``: UKMP's progressive schedule with per-modality normalisation, and the per-layer
  ("local") one;
- ``allocated``: ECoFLaP's per-group sparsity allocation;
- ``schedules``: the registry of schedules a scorer names, and ``plan_from_scores``;
- ``search``: plan search (beyond the paper): perturbed candidates judged by a loss on held-out pairs.
"""
