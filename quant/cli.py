"""What every command line of the toolkit shares: exit codes, argument checks, and a clean end on Ctrl-C.

Exit codes
----------
===  ==============================================================================
0    success
1    the result disagrees (the device or RTL with the golden model, a fuzz finding)
2    usage or input error: bad arguments, an unreadable or wrong-kind file, a model that does not fit
3    the link or the device failed: a port that closed, a device that stopped answering or refused
130  interrupted (Ctrl-C)
===  ==============================================================================

Errors are one line on stderr, ``error: ...``, never a traceback.
"""

import sys

__all__ = ["EXIT_OK", "EXIT_DISAGREES", "EXIT_USAGE", "EXIT_LINK", "EXIT_INTERRUPTED", "EXIT_CODES", "error",
           "interruptible", "in_range"]

EXIT_OK, EXIT_DISAGREES, EXIT_USAGE, EXIT_LINK, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

#: For ``--help`` epilogs.
EXIT_CODES = ("Exit codes: 0 success; 1 the result disagrees with the golden model; 2 usage or input error; "
              "3 link or device failure; 130 interrupted.")


def error(message, code):
    """Print ``error: message`` to stderr and return ``code``."""
    print(f"error: {message}", file=sys.stderr)
    return code


def interruptible(main):
    """Wrap a ``main(argv) -> int``: Ctrl-C ends it with :data:`EXIT_INTERRUPTED` and no traceback."""
    def run(argv=None):
        try:
            return main(argv)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
    run.__doc__, run.__name__, run.__wrapped__ = main.__doc__, main.__name__, main
    return run


def in_range(parser, name, value, low=None, high=None):
    """``parser.error`` (exit 2) unless ``low <= value <= high`` (either bound may be None)."""
    if value is None:
        return
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"{low}..{high}" if low is not None and high is not None else (
            f"at least {low}" if low is not None else f"at most {high}")
        parser.error(f"--{name} must be {'in ' if low is not None and high is not None else ''}{bounds}, got {value}")
