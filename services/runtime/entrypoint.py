"""``run(main)``: the body of every ``python -m services.<name>``.

Runs ``main()`` in a fresh event loop and turns the ways a service ends into exit codes: a
configuration error prints one line (``configuration error: GRPC_PORT: 'x' is not an
integer``) and exits 2; a forced stop (a second signal during shutdown) exits 1; Ctrl-C before
the server took over signals exits 130; a clean shutdown exits 0.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any, NoReturn

from services.runtime.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

__all__ = ["EXIT_CONFIG", "EXIT_FORCED", "run"]

EXIT_CONFIG = 2
EXIT_FORCED = 1
_EXIT_INTERRUPTED = 130


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> NoReturn:
    """Run ``main()`` to completion and exit the process with the matching code."""
    try:
        asyncio.run(main())
    except ConfigError as exc:
        sys.stderr.write(f"configuration error: {exc}\n")
        sys.exit(EXIT_CONFIG)
    except asyncio.CancelledError:
        sys.stderr.write("shutdown forced by a second signal\n")
        sys.exit(EXIT_FORCED)
    except KeyboardInterrupt:
        sys.exit(_EXIT_INTERRUPTED)
    sys.exit(0)
