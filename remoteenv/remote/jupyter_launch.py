"""Run a Jupyter entry point (ENV/bin/jupyter-lab, ...) as itself, with imports that cost seconds and
that the server does not use deferred until something uses them.

Kept by remote/jupyter.sh as ~/.remoteenv/jupyter/launch.py and run with the env's own python:
    launch.py SCRIPT [ARGS...]     as if SCRIPT [ARGS...] had been run

Why: jsonschema imports rfc3987_syntax when it is installed (jupyter-events pulls it in through
jsonschema[format-nongpl]), and rfc3987_syntax builds Lark Earley parsers for the IRI grammar at
import time: 1-2 s of every JupyterLab start (jupyter-server issue #1559). No schema a Jupyter server
loads uses the "iri" formats. Here the module's import gives a stand-in whose functions import the
real module on their first call and then hand over to it, so validation answers exactly as before;
nothing is paid unless it is used.

SCRIPT that is not Python (a compiled launcher, a shell wrapper) is exec'd as it is. Standard
library only: it runs in any env, with no remoteenv there.
"""

import importlib.abc
import importlib.machinery
import os
import runpy
import sys

# module -> the names its importers take from it at import time (each becomes a call-through)
DEFERRED = {"rfc3987_syntax": ("is_valid_syntax", "is_valid_syntax_iri", "is_valid_syntax_iri_reference")}


def real(name):
    """Import the real module `name` in place of its stand-in, which then forwards to it."""
    stand_in = sys.modules.get(name)
    if stand_in is None or not getattr(stand_in, "__deferred__", False):
        return __import__(name)
    del sys.modules[name]
    FINDER.names.discard(name)
    try:
        module = __import__(name)
    except BaseException:
        sys.modules[name] = stand_in
        raise
    for attr in DEFERRED[name]:
        if hasattr(module, attr):
            setattr(stand_in, attr, getattr(module, attr))
    return module


def _call_through(name, attr):
    def call(*args, **kwargs):
        return getattr(real(name), attr)(*args, **kwargs)

    call.__name__ = call.__qualname__ = attr
    return call


class _Deferring(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, names):
        self.names = set(names)

    def find_spec(self, fullname, path=None, target=None):
        # Only a module that is really there gets a stand-in: a missing one stays an ImportError.
        if fullname in self.names and importlib.machinery.PathFinder.find_spec(fullname) is not None:
            return importlib.machinery.ModuleSpec(fullname, self)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        name = module.__name__
        module.__deferred__ = True
        for attr in DEFERRED[name]:
            setattr(module, attr, _call_through(name, attr))

        def rest(attr):
            # `from M import x` asks for __path__ and the like: those must not load the module.
            if attr.startswith("__"):
                raise AttributeError(attr)
            return getattr(real(name), attr)

        module.__getattr__ = rest


FINDER = _Deferring(DEFERRED)


def main(argv):
    if len(argv) < 2:
        sys.exit("usage: launch.py SCRIPT [ARGS...]")
    script = argv[1]
    try:
        with open(script, "rb") as fh:
            code = compile(fh.read(), script, "exec")
    except (SyntaxError, ValueError, UnicodeDecodeError):
        os.execv(script, argv[1:])
    del code  # compiled only to know it is Python; runpy runs it as __main__
    sys.meta_path.insert(0, FINDER)
    sys.argv = argv[1:]
    sys.path[0] = os.path.dirname(os.path.abspath(script))  # as when SCRIPT is run itself
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main(sys.argv)
