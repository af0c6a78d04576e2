"""Models the project ships or trains itself (the embedded default).

`resolve_model_name` lets every command accept a short name such as `shapes-blip2-t5` wherever it
accepts a model path.
"""

from __future__ import annotations

from pathlib import Path

MODELS_DIR = Path(__file__).parent / "models"
SHIPPED = {
    "shapes-blip2-t5": MODELS_DIR / "shapes-blip2-t5",
    # the same model before its grounding stage (commit 81f8bc5), the second model every default is checked on
    "shapes-blip2-t5-stage2": MODELS_DIR / "shapes-blip2-t5-stage2",
}
#: models with a recipe (`ukmp zoo train`) whose trained weights do not ship yet: listed, never resolved
NOT_SHIPPED = {
    # SmolVLM over SmolLM2-135M-Instruct's real weights (ukmp.zoo.smolvlm); ships as an adapter folder
    "shapes-smolvlm": MODELS_DIR / "shapes-smolvlm",
}


def resolve_model_name(name: str) -> str | None:
    """The local folder of a shipped model called `name`, or None if `name` is not a zoo name.

    A name in `NOT_SHIPPED` is one sentence: it would otherwise be looked up on the Hub and fail later.
    """
    if name in NOT_SHIPPED:
        from ukmp.errors import UserError

        raise UserError(
            f"{name} has not been trained and shipped yet; train it with `ukmp zoo train {name} --out DIR`."
        )
    path = SHIPPED.get(name)
    if path is None:
        return None
    return str(path)
