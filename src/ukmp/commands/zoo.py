"""`ukmp zoo`: list the shipped models and retrain them from scratch."""

from __future__ import annotations

import argparse

from ukmp.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("zoo", help="list or retrain the models ukmp ships")
    zoo_sub = parser.add_subparsers(dest="zoo_command", metavar="ZOO_COMMAND")
    lst = zoo_sub.add_parser("list", help="list shipped models and where they live")
    lst.set_defaults(func=_list)
    train = zoo_sub.add_parser("train", help="train a shipped model from scratch (deterministic)")
    train.add_argument("name", choices=["shapes-blip2-t5"])
    train.add_argument("--out", required=True, help="output model folder")
    train.add_argument("--steps", type=int, default=None, help="optimizer steps (default: the shipped recipe)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    train.set_defaults(func=_train)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def _list(args: argparse.Namespace) -> int:
    from ukmp.zoo import SHIPPED

    for name, path in SHIPPED.items():
        state = "present" if (path / "model.safetensors").exists() else "missing (train it with `ukmp zoo train`)"
        print(f"{name}\t{path}\t{state}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from ukmp.zoo.train_shapes import TrainConfig, train_shapes_model

    cfg = TrainConfig(seed=args.seed)
    if args.steps is not None:
        if args.steps <= 0:
            raise UserError(f"--steps must be positive, got {args.steps}.")
        cfg.steps = args.steps
    out = train_shapes_model(args.out, cfg, overwrite=args.overwrite)
    print(f"wrote {args.name} to {out}")
    return 0
