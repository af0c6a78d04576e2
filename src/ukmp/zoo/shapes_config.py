"""The architecture of the shipped `shapes-blip2-t5` model.

It has the structure of BLIP-2 FlanT5 in the paper (ViT -> Q-Former -> projection -> T5
encoder-decoder with a gated-GELU FFN), scaled down so that it trains on a 2-core CPU, yet wide
enough (256) and with enough heads (8) that removing half of its parameters is a real test.
"""

from __future__ import annotations

from transformers import Blip2Config

from ukmp.data.world_tokenizer import EOS_ID, IMAGE_ID, PAD_ID

NUM_QUERY_TOKENS = 16


def shapes_blip2_t5_config(vocab_size: int, *, vision_layers: int = 4, lm_layers: int = 3) -> Blip2Config:
    """Build the Blip2Config of the shipped model for a tokenizer of `vocab_size` words."""
    vision = dict(
        hidden_size=256,
        intermediate_size=1024,
        num_hidden_layers=vision_layers,
        num_attention_heads=8,
        image_size=64,
        # one patch per cell of the world's 2x2 grid: patch token k sees exactly cell k (see vision_pretraining)
        patch_size=32,
        hidden_act="gelu",
        layer_norm_eps=1e-6,
        attention_dropout=0.0,
        qkv_bias=True,
        # transformers defaults the vision tower to initializer_range=1e-10 (meant for loading pretrained
        # weights): trained from scratch, every vision weight would start at ~0 and the model ignores the image
        initializer_range=0.02,
    )
    qformer = dict(
        hidden_size=256,
        num_hidden_layers=2,
        num_attention_heads=8,
        intermediate_size=1024,
        encoder_hidden_size=256,
        cross_attention_frequency=1,
        vocab_size=64,
        max_position_embeddings=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    text = dict(
        model_type="t5",
        vocab_size=vocab_size,
        d_model=256,
        d_kv=32,
        num_heads=8,
        d_ff=1024,
        num_layers=lm_layers,
        num_decoder_layers=lm_layers,
        feed_forward_proj="gated-gelu",
        dense_act_fn="gelu_new",
        is_gated_act=True,
        dropout_rate=0.0,
        tie_word_embeddings=False,
        pad_token_id=PAD_ID,
        eos_token_id=EOS_ID,
        decoder_start_token_id=PAD_ID,
        relative_attention_num_buckets=32,
        relative_attention_max_distance=128,
    )
    return Blip2Config(
        vision_config=vision,
        qformer_config=qformer,
        text_config=text,
        num_query_tokens=NUM_QUERY_TOKENS,
        image_token_index=IMAGE_ID,
    )
