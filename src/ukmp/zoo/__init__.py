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
#: models that ship as a delta over a file the user installs (`ukmp.zoo.assembled`): assembled at first use;
#: until trained weights ship, the name is listed as a recipe and refused in one sentence
ASSEMBLED = {
    # SmolVLM over SmolLM2-135M-Instruct's real weights (ukmp.zoo.smolvlm); ships as an adapter folder
    "shapes-smolvlm": MODELS_DIR / "shapes-smolvlm",
}


def resolve_model_name(name: str) -> str | None:
    """The local folder of a zoo model called `name`, or None if `name` is not a zoo name.

    An assembled model's first use builds its folder (`assembled.assembled_folder`). One that is not
    trained yet is one sentence: it would otherwise be looked up on the Hub and fail later.
    """
    if name in ASSEMBLED:
        from ukmp.errors import UserError
        from ukmp.zoo.assembled import assembled_folder, is_trained

        if not is_trained(ASSEMBLED[name]):
            raise UserError(
                f"{name} has not been trained and shipped yet; train it with `ukmp zoo train {name} --out DIR`."
            )
        return str(assembled_folder(name, ASSEMBLED[name]))
    path = SHIPPED.get(name)
    if path is None:
        return None
    return str(path)
