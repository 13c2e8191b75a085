"""The batch manifest: one JSON record per exposure, and the fingerprints that let a rerun skip
what is already done."""
import hashlib
import json
import os
import tempfile

from .. import __version__
from ..runtime import termination

MANIFEST_NAME = "ramp2slope_manifest.json"


def input_fingerprint(path):
    """Size and modification time of an input: a changed or replaced file is processed again.

    Hashing every input would read terabytes on large programs just to decide to skip them."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def parameters_fingerprint(params):
    """A hash of everything that shapes the products (not the thread count, which does not)."""
    relevant = {key: value for key, value in params.items() if key != "threads"}
    relevant["ramp2slope"] = __version__
    text = json.dumps(relevant, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load(path):
    """{input path: record} from a manifest file; empty when there is none yet."""
    try:
        with open(path) as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return {}   # an unreadable manifest only costs a rerun of everything
    return {entry["input"]: entry for entry in data.get("exposures", []) if "input" in entry}


def save(path, records, summary=None):
    """Write the manifest atomically, so that a reader or an interrupted run never sees half."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    data = {"ramp2slope": __version__, "summary": summary or {}, "exposures": list(records)}
    with termination.deferred():     # short: SIGTERM waits rather than leave a .part behind
        fd, tmp = tempfile.mkstemp(prefix=".manifest-", suffix=".part", dir=folder)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(data, handle, indent=1)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


def product_record(path):
    stat = os.stat(path)
    return {"path": path, "size": stat.st_size}


def is_complete(record, fingerprint, params_hash):
    """Whether a previous record's products can stand: it succeeded on the same input with the
    same parameters, and every product it wrote is still there under its final name with its
    size."""
    if not record or record.get("status") != "done":
        return False
    if record.get("fingerprint") != fingerprint or record.get("parameters") != params_hash:
        return False
    products = record.get("products") or []
    if not products:
        return False
    for product in products:
        try:
            if os.path.getsize(product["path"]) != product["size"]:
                return False
        except (OSError, KeyError, TypeError):
            return False
    return True
