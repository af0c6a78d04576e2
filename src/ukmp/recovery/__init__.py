"""Recovery after pruning: weight-recalling LoRA trained by progressive distillation (docs/method-notes.md).

- ``recall_lora``: the layer (Eq. 12), attaching it from the dense base + pruning plan, merging;
- ``phases``: Table A's sub-phases generated from the model's depths, and the Table B ablations;
- ``losses``: Frobenius-normalised feature MSE, KL at temperature T, task cross-entropy;
- ``distill``: the Accelerate training job behind ``ukmp recover`` (checkpoints, resume, merge);
- ``checkpoint``: the resumable training state, written without pickle.
"""

from ukmp.recovery.recall_lora import (
    RecallLoRALinear,
    RecallLoRAOptions,
    attach_recall_lora,
    merge_recall_lora,
)

__all__ = ["RecallLoRALinear", "RecallLoRAOptions", "attach_recall_lora", "merge_recall_lora"]
