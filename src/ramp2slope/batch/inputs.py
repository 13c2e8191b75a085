"""The exposures a batch names: files, glob patterns, folders and jwst association files."""
import glob
import json
import os

from ..errors import BadInputError, Ramp2SlopeError
from ..stpipe.naming import split_root

#: Raw exposures found in a folder (jwst's Stage 1 input name).
FOLDER_PATTERN = "*_uncal.fits"
_GLOB_CHARS = set("*?[")


def is_association(path):
    return os.fspath(path).lower().endswith(".json")


def is_batch(inputs):
    """Whether the command line's inputs are a batch rather than one exposure run as before."""
    inputs = [os.fspath(p) for p in inputs]
    if len(inputs) != 1:
        return True
    only = inputs[0]
    return os.path.isdir(only) or is_association(only) or (
        not os.path.exists(only) and bool(_GLOB_CHARS & set(only)))


def association_members(path):
    """The science members of a jwst association file, as paths.

    Member names are relative to the association's folder, as jwst resolves them; members of
    other types (background, imprint, ...) are not Stage 1 inputs of the products.
    """
    try:
        with open(path) as handle:
            asn = json.load(handle)
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read the association ({exc.strerror})") from None
    except ValueError as exc:
        raise BadInputError(f"{path}: not a JSON association ({exc})") from None
    products = asn.get("products") if isinstance(asn, dict) else None
    if not isinstance(products, list):
        raise BadInputError(f"{path}: not a jwst association (no 'products' list)")
    folder = os.path.dirname(os.path.abspath(path))
    members = []
    for product in products:
        for member in (product or {}).get("members", []) or []:
            if not isinstance(member, dict) or "expname" not in member:
                raise BadInputError(f"{path}: a member without 'expname'")
            if str(member.get("exptype", "science")).lower() != "science":
                continue
            members.append(os.path.join(folder, member["expname"]))
    if not members:
        raise BadInputError(f"{path}: the association has no science members")
    return members


def expand_inputs(inputs):
    """Absolute paths of every exposure ``inputs`` name, in order, each once.

    A folder contributes its ``*_uncal.fits`` files, a pattern its matches (sorted), an
    association its science members. A path that does not exist is kept: it fails as that
    exposure's error, so that one missing member does not stop the batch. Two inputs with the
    same root name would write the same products, which is refused.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    found = []
    for item in inputs:
        item = os.fspath(item)
        if os.path.isdir(item):
            matches = sorted(glob.glob(os.path.join(item, FOLDER_PATTERN)))
            if not matches:
                raise BadInputError(f"{item}: no {FOLDER_PATTERN} files in this folder")
            found.extend(matches)
        elif is_association(item):
            found.extend(association_members(item))
        elif not os.path.exists(item) and _GLOB_CHARS & set(item):
            matches = sorted(p for p in glob.glob(item) if os.path.isfile(p))
            if not matches:
                raise BadInputError(f"{item}: no file matches this pattern")
            found.extend(matches)
        else:
            found.append(item)
    paths, roots = [], {}
    for path in found:
        path = os.path.abspath(path)
        if path in roots.values():
            continue
        root = split_root(path)
        if root in roots:
            raise Ramp2SlopeError(f"{roots[root]} and {path} have the same root name {root!r} "
                                  f"and would write the same products")
        roots[root] = path
        paths.append(path)
    if not paths:
        raise Ramp2SlopeError("no exposures to process")
    return paths
