"""``pystator viz FILE``: a machine's diagram on the command line.

``--format`` is ``mermaid`` (``stateDiagram-v2``, the default), ``flowchart`` (Mermaid
``flowchart``), ``dot`` (Graphviz) or ``scxml``; the text goes to stdout, or to ``--output PATH``.
Exit 0 on success, 1 when the file is not a valid machine definition (every problem is listed),
2 when it cannot be read or the output cannot be written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from pystator.fsm_core.errors import FSMError, MachineValidationError
from pystator.fsm_core.machine import StateMachine
from pystator.visualization import (
    DIRECTIONS,
    to_dot,
    to_mermaid,
    to_mermaid_flowchart,
    to_scxml,
)

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2

FORMATS: tuple[str, ...] = ("mermaid", "flowchart", "dot", "scxml")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``viz`` command."""
    viz = sub.add_parser("viz", help="draw a machine as Mermaid, Graphviz DOT or SCXML")
    viz.add_argument("file", metavar="FILE", help="machine definition file (YAML or .json)")
    viz.add_argument(
        "--format",
        "-f",
        choices=FORMATS,
        default="mermaid",
        help="mermaid (stateDiagram-v2, the default), flowchart (Mermaid), dot (Graphviz), scxml",
    )
    viz.add_argument("--output", "-o", metavar="PATH", help="write here instead of stdout")
    viz.add_argument(
        "--direction",
        choices=DIRECTIONS,
        default=None,
        help="layout direction (default: LR, TB for flowchart; not used by scxml)",
    )
    viz.add_argument("--title", help="diagram title (not used by scxml)")
    viz.add_argument("--no-guards", action="store_true", help="leave guard names off the arrows")
    viz.add_argument("--actions", action="store_true", help="show action names on the arrows")
    viz.add_argument(
        "--no-timeouts", action="store_true", help="leave out after: delays and state timeouts"
    )
    viz.set_defaults(func=_viz)


def render(machine: StateMachine, args: argparse.Namespace) -> str:
    """The text of ``machine`` in ``args.format`` with the options of ``args``."""
    if args.format == "scxml":
        return to_scxml(machine)
    drawers: dict[str, tuple[Callable[..., str], str]] = {
        "mermaid": (to_mermaid, "LR"),
        "flowchart": (to_mermaid_flowchart, "TB"),
        "dot": (to_dot, "LR"),
    }
    draw, default_direction = drawers[args.format]
    return draw(
        machine,
        title=args.title,
        show_guards=not args.no_guards,
        show_actions=args.actions,
        show_timeouts=not args.no_timeouts,
        direction=args.direction or default_direction,
    )


def _viz(args: argparse.Namespace) -> int:
    try:
        machine = StateMachine.from_file(args.file)
    except OSError as exc:
        return _fail(f"cannot read {args.file}: {exc.strerror or exc}")
    except MachineValidationError as exc:
        for problem in exc.problems:
            print(f"{args.file}: {problem}", file=sys.stderr)
        return EXIT_INVALID
    except FSMError as exc:
        print(f"{args.file}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    text = render(machine, args)
    if not text.endswith("\n"):
        text += "\n"
    if args.output is None:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as exc:
        return _fail(f"cannot write {args.output}: {exc.strerror or exc}")
    print(f"wrote {args.format} diagram of {machine.name} to {args.output}", file=sys.stderr)
    return EXIT_OK


def _fail(message: str) -> int:
    print(f"pystator viz: {message}", file=sys.stderr)
    return EXIT_USAGE
