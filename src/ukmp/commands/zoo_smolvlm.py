"""`ukmp zoo train shapes-smolvlm`: the options only that recipe has, and running it."""

from __future__ import annotations

import argparse

from ukmp.errors import UserError

DTYPES = ("float32", "bfloat16")  # float16 would need a gradient scaler


def add_smolvlm_options(train: argparse.ArgumentParser) -> None:
    """Options of `ukmp zoo train` that apply to shapes-smolvlm alone."""
    group = train.add_argument_group("shapes-smolvlm")
    group.add_argument("--vision-steps", type=int, default=None, help="steps of the tower's pretraining stage")
    group.add_argument("--align-steps", type=int, default=None, help="steps of the connector alignment stage")
    group.add_argument("--batch-size", type=int, default=None, help="examples per step of the two LM stages")
    group.add_argument("--train-images", type=int, default=None, help="world images to train on")
    group.add_argument("--threads", type=int, default=None, help="CPU threads (the recipe's default: 2)")
    group.add_argument(
        "--image-scale",
        type=float,
        default=None,
        help="set the image tokens' mean norm to this many LM word-embedding norms when alignment starts",
    )
    group.add_argument(
        "--image-cap",
        type=float,
        default=None,
        help="penalise image tokens louder than this many word-embedding norms in the LM stages",
    )
    group.add_argument(
        "--freeze-tower",
        action="store_true",
        help="train the tower in its own stage only, not with the LM's loss afterwards",
    )
    group.add_argument("--device", default="cpu", help="where to train: cpu, cuda, cuda:1, ... (default: cpu)")
    group.add_argument(
        "--dtype", choices=DTYPES, default="float32", help="autocast dtype of the forward (weights stay float32)"
    )
    train.set_defaults(smolvlm_options=[(a.option_strings[0], a.dest, a.default) for a in group._group_actions])


def smolvlm_flags_given(args: argparse.Namespace) -> list[str]:
    """The shapes-smolvlm options given on the command line (set to other than their defaults)."""
    return [flag for flag, dest, default in args.smolvlm_options if getattr(args, dest) != default]


def train_smolvlm(args: argparse.Namespace) -> int:
    """Run (or continue, with the same --out) the shapes-smolvlm recipe."""
    import torch

    from ukmp.zoo.smolvlm_ship import train_shapes_smolvlm
    from ukmp.zoo.smolvlm_training import SmolVLMTrainConfig

    if args.stage2_only or args.from_stage2:
        raise UserError("--stage2-only and --from-stage2 belong to shapes-blip2-t5's recipe, not shapes-smolvlm's.")
    cfg = SmolVLMTrainConfig(seed=args.seed)
    settings = {
        "instruct_steps": args.steps,
        "vision_steps": args.vision_steps,
        "align_steps": args.align_steps,
        "batch_size": args.batch_size,
        "train_images": args.train_images,
        "threads": args.threads,
        "image_scale": args.image_scale,
        "image_cap": args.image_cap,
    }
    for field, value in settings.items():
        if value is None:
            continue
        zero_allowed = field in ("instruct_steps", "vision_steps", "align_steps")
        if value < 0 or (value == 0 and not zero_allowed):
            raise UserError(f"--{field.replace('_', '-').replace('instruct-', '')} must be positive, got {value}.")
        setattr(cfg, field, value)
    if args.freeze_tower:
        cfg.align_trains_vision = cfg.instruct_trains_vision = False
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {args.device} needs a GPU that torch can see; this machine has none.")
    train_shapes_smolvlm(args.out, cfg, device=args.device, dtype=getattr(torch, args.dtype), overwrite=args.overwrite)
    print(f"wrote shapes-smolvlm to {args.out}")
    return 0
