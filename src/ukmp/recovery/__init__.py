"""Recovery after pruning: weight-recalling LoRA trained by progressive distillation (docs/method-notes.md).

- ``recall_lora``: the layer (Eq. 12), attaching it from the dense base + pruning plan, merging;
- ``phases``: Table A's sub-phases generated from the model's depths, and the Table B ablations;
- ``losses``: Frobenius-normalised feature MSE, KL at temperature T, task cross-entropy;
- ``config``: a run's options (``RecoveryConfig``) and its learning-rate schedule;
- ``models``: the student, its checked teacher, and the processor;
- ``features``: block-output taps and one sub-phase's loss on a batch;
- ``data_parallel``: each process's share of a step, and the share-weighted sums across processes;
- ``distill``: the Accelerate training job behind ``ukmp recover`` (the loop, outputs, resume, merge);
- ``checkpoint``: the resumable training state, written without pickle.
"""

from ukmp.recovery.recall_lora import (
    RecallLoRALinear,
    RecallLoRAOptions,
    attach_recall_lora,
    merge_recall_lora,
)

__all__ = ["RecallLoRALinear", "RecallLoRAOptions", "attach_recall_lora", "merge_recall_lora"]
