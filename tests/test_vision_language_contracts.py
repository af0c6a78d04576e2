"""Every vision-language architecture ukmp supports, through the same contract (``tests/vlm_contract.py``)."""

from __future__ import annotations

from eval_tiny_model import build_tiny_blip2, build_tiny_blip2_decoder, build_tiny_instructblip
from tiny_idefics3 import save_tiny_idefics3_with_processor
from tiny_llava import save_tiny_llava_with_processor
from tiny_qwen2_vl import save_tiny_qwen2_vl_with_processor
from vlm_contract import VisionLanguageContract


class TestBlip2T5(VisionLanguageContract):
    architecture = "Blip2ForConditionalGeneration"

    def build(self, folder):
        return build_tiny_blip2(folder)


class TestBlip2OPT(VisionLanguageContract):
    architecture = "Blip2ForConditionalGeneration"

    def build(self, folder):
        return build_tiny_blip2_decoder(folder, "opt")


class TestBlip2Llama(VisionLanguageContract):
    architecture = "Blip2ForConditionalGeneration"

    def build(self, folder):
        return build_tiny_blip2_decoder(folder, "llama")


class TestInstructBlipT5(VisionLanguageContract):
    architecture = "InstructBlipForConditionalGeneration"

    def build(self, folder):
        return build_tiny_instructblip(folder, "t5")


class TestInstructBlipLlama(VisionLanguageContract):
    architecture = "InstructBlipForConditionalGeneration"

    def build(self, folder):
        return build_tiny_instructblip(folder, "llama")


class TestLlavaClipLlama(VisionLanguageContract):
    architecture = "LlavaForConditionalGeneration"

    def build(self, folder):
        return save_tiny_llava_with_processor(folder, "clip-llama")


class TestLlavaSiglipQwen2(VisionLanguageContract):
    architecture = "LlavaForConditionalGeneration"

    def build(self, folder):
        return save_tiny_llava_with_processor(folder, "siglip-qwen2")


class TestLlavaClipMistral(VisionLanguageContract):
    architecture = "LlavaForConditionalGeneration"

    def build(self, folder):
        return save_tiny_llava_with_processor(folder, "clip-mistral")


class TestLlavaNextClipLlama(VisionLanguageContract):
    architecture = "LlavaNextForConditionalGeneration"

    def build(self, folder):
        return save_tiny_llava_with_processor(folder, "clip-llama-next")


class TestQwen2VL(VisionLanguageContract):
    architecture = "Qwen2VLForConditionalGeneration"

    def build(self, folder):
        return save_tiny_qwen2_vl_with_processor(folder, "qwen2-vl")


class TestQwen25VL(VisionLanguageContract):
    architecture = "Qwen2_5_VLForConditionalGeneration"

    def build(self, folder):
        return save_tiny_qwen2_vl_with_processor(folder, "qwen2.5-vl")


class TestSmolVLM(VisionLanguageContract):
    architecture = "SmolVLMForConditionalGeneration"

    def build(self, folder):
        return save_tiny_idefics3_with_processor(folder, "smolvlm")  # images split into crops + a global view


class TestIdefics3(VisionLanguageContract):
    architecture = "Idefics3ForConditionalGeneration"

    def build(self, folder):
        return save_tiny_idefics3_with_processor(folder, "idefics3")  # one view per image
