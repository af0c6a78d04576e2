"""Zoo models that ship as a delta over a file the user installs, put together once and cached.

`shapes-smolvlm` ships only what its training changed (`smolvlm_ship`); every command wants an
ordinary model folder. So the first use of its name assembles the model over the installed GGUF,
merges the LoRA delta into plain Linear layers, and saves the whole model with its processor in the
project's cache (`ukmp.data.index.cache_dir`: ``$UKMP_CACHE``, else ``~/.cache/ukmp``, where the
generated data lives too, so manifests name it portably as ``$UKMP_CACHE/...``); later uses load
that folder like any other. The cache folder's name carries the checksum of the shipped delta and
of the GGUF it was trained on, so a retrained delta never meets a stale model, and a cached model is
used without reading the GGUF again. The folder is written under a temporary name and renamed when
complete, so a killed assembly leaves nothing that looks finished.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from ukmp.checksums import file_sha256
from ukmp.data.index import cache_dir
from ukmp.zoo.smolvlm_text import TextModel, smollm2_text_model

RECORD = "training.json"


def is_trained(shipped: Path) -> bool:
    """Whether the shipped folder holds trained weights (a recipe without them is listed, never loaded)."""
    return (shipped / RECORD).is_file()


def assembled_folder(
    name: str,
    shipped: Path,
    *,
    text_loader: Callable[[], TextModel] | None = None,
    cache: Path | None = None,
    progress: bool = True,
) -> Path:
    """The folder of the whole model `name`, assembled from `shipped` over the installed LM at first use.

    `text_loader` gives the language model (default: SmolLM2-135M-Instruct's installed GGUF).
    """
    from ukmp.zoo.smolvlm_ship import ADAPTER, load_shapes_smolvlm

    record = json.loads((shipped / RECORD).read_text())
    trained_on = str(record.get("language_model", {}).get("sha256", "unknown"))
    folder = (cache or cache_dir()) / f"{name}-{file_sha256(shipped / ADAPTER)[:12]}-{trained_on[:12]}"
    if (folder / "config.json").is_file():
        return folder  # assembled before: the folder holds the whole model, the GGUF is not read again
    # loading the LM checks the GGUF (missing, or not the file the delta was trained on: one sentence)
    text = (text_loader or smollm2_text_model)()
    if progress:
        print(f"ukmp: assembling {name} over its language model into {folder} (once)")
    model, processor = load_shapes_smolvlm(shipped, text_loader=lambda: text, merge=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=folder.parent))
    try:
        model.save_pretrained(partial)
        processor.save_pretrained(partial)
        os.replace(partial, folder)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return folder
