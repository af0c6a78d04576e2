"""`ukmp zoo`: list the shipped models and retrain them from scratch."""

from __future__ import annotations

import argparse
from pathlib import Path

from ukmp.commands.zoo_smolvlm import add_smolvlm_options, smolvlm_flags_given, train_smolvlm
from ukmp.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("zoo", help="list or retrain the models ukmp ships")
    zoo_sub = parser.add_subparsers(dest="zoo_command", metavar="ZOO_COMMAND")
    lst = zoo_sub.add_parser("list", help="list shipped models and where they live")
    lst.set_defaults(func=_list)
    train = zoo_sub.add_parser("train", help="train a shipped model from scratch (deterministic)")
    train.add_argument("name", choices=["shapes-blip2-t5", "shapes-smolvlm"])
    train.add_argument("--out", required=True, help="output model folder")
    train.add_argument(
        "--steps",
        type=int,
        default=None,
        help="optimizer steps of the main stage (default: the recipe's; for shapes-smolvlm its instruct stage)",
    )
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    train.add_argument(
        "--from-stage2",
        metavar="DIR",
        default=None,
        help="skip stages 1 and 2: start stage 3 from a model this recipe wrote with --stage2-only",
    )
    train.add_argument("--stage2-only", action="store_true", help="stop after stage 2 (a checkpoint for --from-stage2)")
    add_smolvlm_options(train)
    train.set_defaults(func=_train)
    verify = zoo_sub.add_parser(
        "verify", help="retrain the first steps of a model's recipe and compare the losses with its training log"
    )
    verify.add_argument("name", help="a zoo name or a folder written by `ukmp zoo train`")
    verify.add_argument(
        "--steps",
        type=int,
        default=None,
        help="how many steps to replay, stages counted in order (default: all of stage 1 and the first 20 of stage 2)",
    )
    verify.add_argument(
        "--stage2",
        metavar="DIR",
        default=None,
        help="replay the first --steps steps of stage 3 (default 20) from this stage-2 model instead",
    )
    verify.set_defaults(func=_verify)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def _list(args: argparse.Namespace) -> int:
    from ukmp.zoo import ASSEMBLED, SHIPPED
    from ukmp.zoo.assembled import is_trained

    for name, path in SHIPPED.items():
        state = "present" if (path / "model.safetensors").exists() else "missing (train it with `ukmp zoo train`)"
        print(f"{name}\t{path}\t{state}")
    for name, path in ASSEMBLED.items():
        if is_trained(path):
            note = "present (a delta: the whole model is assembled over its language model at first use)"
            print(f"{name}\t{path}\t{note}")
        else:
            print(f"{name}\t-\tnot trained yet (its recipe: `ukmp zoo train {name} --out DIR`)")
    return 0


def _train(args: argparse.Namespace) -> int:
    from ukmp.zoo.train_shapes import TrainConfig, train_shapes_model

    if args.name == "shapes-smolvlm":
        return train_smolvlm(args)

    foreign = smolvlm_flags_given(args)
    if foreign:
        raise UserError(f"{', '.join(foreign)} belong to shapes-smolvlm's recipe, not {args.name}'s; drop them.")
    cfg = TrainConfig(seed=args.seed)
    if args.steps is not None:
        if args.steps <= 0:
            raise UserError(f"--steps must be positive, got {args.steps}.")
        cfg.steps = args.steps
    if args.stage2_only and args.from_stage2:
        raise UserError("--stage2-only and --from-stage2 exclude each other: the first stops where the second starts.")
    if args.stage2_only:
        cfg.grounding_steps = 0
    if args.from_stage2 is not None and not Path(args.from_stage2).is_dir():
        raise UserError(f"--from-stage2 {args.from_stage2} is not a folder.")
    out = train_shapes_model(args.out, cfg, overwrite=args.overwrite, stage2_dir=args.from_stage2)
    print(f"wrote {args.name} to {out}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from ukmp.zoo import resolve_model_name
    from ukmp.zoo.train_shapes import replay_first_steps, replay_stage_three

    if args.steps is not None and args.steps <= 0:
        raise UserError(f"--steps must be positive, got {args.steps}.")
    from ukmp.zoo import ASSEMBLED
    from ukmp.zoo.smolvlm_ship import ADAPTER, replay_smolvlm

    if args.name in ASSEMBLED or (Path(args.name) / ADAPTER).is_file():
        from ukmp.zoo.assembled import is_trained

        folder = ASSEMBLED.get(args.name, Path(args.name))
        if not is_trained(folder):
            resolve_model_name(args.name)  # the sentence that says it is not trained yet
        if args.stage2 is not None:
            raise UserError("--stage2 belongs to shapes-blip2-t5's recipe; shapes-smolvlm replays from its start.")
        recorded, replayed = replay_smolvlm(folder, args.steps)
        return _verdict(recorded, replayed)
    model_dir = resolve_model_name(args.name) or args.name
    if args.stage2 is not None:
        if not Path(args.stage2).is_dir():
            raise UserError(f"--stage2 {args.stage2} is not a folder.")
        recorded, replayed = replay_stage_three(model_dir, args.stage2, args.steps or 20)
    else:
        recorded, replayed = replay_first_steps(model_dir, args.steps)
    return _verdict(recorded, replayed)


def _verdict(recorded: list[float], replayed: list[float]) -> int:
    """Compare the replayed losses with the log: 0 when every step matches, 1 when one does not."""
    worst = max(abs(a - b) for a, b in zip(recorded, replayed))
    print(f"replayed {len(replayed)} steps; largest loss difference from the training log: {worst:.3g}")
    if worst > 1e-5:
        print("not reproduced: the same recipe gives other losses here (thread count, library versions or CPU differ)")
        return 1
    print("reproduced: the losses match the training log step by step")
    return 0
