# remoteenv env verify: run by the env's own python on the host, as `python - MODULE... [--cuda]`.
# Prints one JSON object: each import's result, and with --cuda what torch sees of the GPUs.
import importlib
import json
import sys

args = sys.argv[1:]
cuda = "--cuda" in args
report = {"python": sys.version.split()[0], "imports": {}}
for name in [a for a in args if a != "--cuda"]:
    try:
        module = importlib.import_module(name)
        report["imports"][name] = {"ok": True, "version": str(getattr(module, "__version__", ""))}
    except Exception as exc:  # any failure to import is the answer
        report["imports"][name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
if cuda:
    try:
        import torch
    except ImportError:
        report["torch"] = None
    else:
        report["torch"] = {"version": torch.__version__, "cuda": torch.version.cuda,
                           "available": bool(torch.cuda.is_available()),
                           "devices": int(torch.cuda.device_count())}
print(json.dumps(report))
