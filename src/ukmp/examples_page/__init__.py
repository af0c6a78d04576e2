"""The examples page: what pruning did to a model's outputs, shown next to the dense model's.

Tables and curves say how much quality a method keeps; they do not show what its model now says.
The page does: for a fixed sample of evaluation images (the same images for every method, ratio and
draw) one row group per image, with the image, the reference caption and answers, the dense
model's caption and answers, and each pruned (and recovered) model's at the ratio chosen with a
switch; wrong answers are marked. For a language model the rows are prompts, and the outputs their
continuations.

Nothing is generated for the page. Its outputs are those the evaluation kept anyway:
``OUT/evals/<name>.json`` of a ``ukmp compare`` run (every caption and answer), or the continuations
``ukmp evaluate --task perplexity --examples N`` keeps for a language model. The data path::

    evaluation results -> document (examples.json) -> examples.html (images embedded) + examples.md

``document`` defines examples.json; ``sample`` picks the images, ``outputs`` reads one model's
outputs for them and marks its answers, ``from_compare`` and ``from_results`` build the document,
``html_page`` and ``markdown_page`` render it, and ``files`` writes everything atomically.
"""

from ukmp.examples_page.files import PAGE_HTML, PAGE_JSON, PAGE_MARKDOWN, write_page

__all__ = ["PAGE_HTML", "PAGE_JSON", "PAGE_MARKDOWN", "write_page"]
