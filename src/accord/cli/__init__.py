"""The ``accord`` command: parse, run one command, turn errors into one ``error:`` line.

Exit codes: 0 done, 1 failure, 2 bad input or usage, 3 nothing to do.

Each command lives in one module of this package, its grammar beside its action
(``task.py`` holds ``accord task add`` and what it does); ``_parser.py`` says which
module holds which command, and ``_common.py`` holds what they share. To add a
command: write its parser function and its action in the module of its noun, and
name the command in ``_parser.MODULE_OF`` if it is a new one at the top level.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from accord.errors import AccordError, HookBlocked, NothingToDo


def main(argv: Sequence[str] | None = None) -> int:
    from accord.cli._parser import build
    from accord.errors import UsageError

    try:
        args = build(sys.argv[1:] if argv is None else argv).parse_args(argv)
    except UsageError as e:
        return _fail(str(e), 2)
    # Only now: `--version` and `--help` end inside the parser, before any command runs.
    from accord.cli._common import Command, Context

    ctx = Context(args)
    run: Command = args.func  # what the command's module bound to it
    try:
        code = run(ctx)
        if code == 0:
            ctx.done()
        return code
    except NothingToDo as e:
        sys.stderr.write(f"nothing to do: {e}\n")
        return e.exit_code
    except HookBlocked as e:
        _fail(str(e), e.exit_code)
        for line in e.feedback.splitlines():
            sys.stderr.write(f"  | {line}\n")
        return e.exit_code
    except AccordError as e:
        from accord.cli._advice import worded

        return _fail(worded(e), e.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except BrokenPipeError:
        # Output piped into `head` and closed: not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:  # noqa: BLE001 - the last line of defence prints one line too
        if os.environ.get("ACCORD_DEBUG"):
            import traceback

            traceback.print_exc()
        return _fail(
            f"internal error ({type(e).__name__}: {e}); rerun with ACCORD_DEBUG=1 and report it",
            1,
        )
    finally:
        ctx.close()


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"error: {message}\n")
    return code
