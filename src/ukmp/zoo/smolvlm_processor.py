"""The processor of `shapes-smolvlm`: SmolVLM's, over SmolLM2's tokenizer, sized for the world's images.

SmolVLM marks an image in the prompt with tokens SmolLM2's tokenizer does not have
(``<fake_token_around_image>``, ``<image>``, ``<global-img>``, the ``<row_r_col_c>`` crop tags and
``<end_of_utterance>``); `add_image_tokens` adds them as special tokens, and the model gives them
embedding rows (`smolvlm.assemble_smolvlm`).

The world's images are 64 x 64 pixels, so the image processor keeps them at that size and does not
split them into crops: each image is one view, read by the tower as 4 x 4 patches of 16 pixels, which
the connector's pixel shuffle (scale 2) turns into 4 image tokens, one per cell of the world's 2 x 2
grid. Normalisation is to [-1, 1] as for the shipped model, so the processor's pixels equal
`train_shapes.images_to_pixels` of the same image.

transformers' ``SmolVLMProcessor`` also builds a video processor, which needs torchvision and
num2words; images never use it, so `ImageOnlySmolVLMProcessor` leaves it out.
"""

from __future__ import annotations

from transformers import SmolVLMProcessor
from transformers.processing_utils import ProcessorMixin

IMAGE_SIZE = 64
PATCH_SIZE = 16
SCALE_FACTOR = 2
#: image tokens per image: (64 / 16)^2 patches, 4 of them shuffled into each token
IMAGE_SEQ_LEN = (IMAGE_SIZE // PATCH_SIZE) ** 2 // SCALE_FACTOR**2
ROW_COL_TOKENS = [f"<row_{r + 1}_col_{c + 1}>" for r in range(6) for c in range(6)]
IMAGE_TOKENS = ["<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>", *ROW_COL_TOKENS]
#: SmolLM2-Instruct's turn format with the image first in the user's turn: the format the model is trained
#: in (`smolvlm_data.PROMPT` is this template's output), and the one generation wraps prompts in
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>{% else %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
IMAGE_MEAN = [0.5, 0.5, 0.5]
IMAGE_STD = [0.5, 0.5, 0.5]


class ImageOnlySmolVLMProcessor(SmolVLMProcessor):
    """``SmolVLMProcessor`` with an image processor and a tokenizer only (no video processor)."""

    def __init__(self, image_processor=None, tokenizer=None, image_seq_len: int = 169, chat_template=None, **kwargs):
        self.fake_image_token = "<fake_token_around_image>"
        self.image_token = "<image>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.end_of_utterance_token = "<end_of_utterance>"
        self.global_image_token = "<global-img>"
        self.image_seq_len = image_seq_len
        self.video_token = "<video>"
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

    def apply_chat_template(self, conversation, chat_template=None, **kwargs):
        """The template rendered as any processor does; SmolVLM's own version reads video settings first."""
        return ProcessorMixin.apply_chat_template(self, conversation, chat_template, **kwargs)


def add_image_tokens(tokenizer) -> int:
    """Add SmolVLM's image tokens (and a pad token if there is none); return how many were new."""
    added = tokenizer.add_special_tokens({"additional_special_tokens": IMAGE_TOKENS})
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return added


def build_processor(tokenizer) -> ImageOnlySmolVLMProcessor:
    """SmolVLM's processor for 64-pixel world images over `tokenizer` (which must have the image tokens)."""
    from transformers.models.smolvlm.image_processing_pil_smolvlm import SmolVLMImageProcessorPil

    image_processor = SmolVLMImageProcessorPil(
        size={"longest_edge": IMAGE_SIZE},
        max_image_size={"longest_edge": IMAGE_SIZE},
        do_image_splitting=False,
        image_mean=IMAGE_MEAN,
        image_std=IMAGE_STD,
    )
    return ImageOnlySmolVLMProcessor(
        image_processor, tokenizer, image_seq_len=IMAGE_SEQ_LEN, chat_template=CHAT_TEMPLATE
    )
