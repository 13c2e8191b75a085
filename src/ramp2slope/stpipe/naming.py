"""Output file names as the official pipeline makes them (``<root>_<suffix>.fits``)."""
import contextlib
import os

from ..errors import BadInputError, Ramp2SlopeError

# Suffixes that end a product name; removing one gives the exposure's root name.
KNOWN_SUFFIXES = (
    "uncal", "ramp", "rate", "rateints", "fitopt", "trapsfilled", "calints", "cal",
    "dq_init", "dqinit", "saturation", "superbias", "refpix", "linearity", "dark_current", "dark",
    "jump", "ramp_fit", "rampfit", "0_ramp_fit", "1_ramp_fit", "group_scale", "ipc", "persistence",
    "charge_migration", "gain_scale", "gain_scaleints", "clean_flicker_noise", "picture_frame",
)


def split_root(name):
    """The root of a product name: folder, extension and a known suffix removed."""
    base = os.path.basename(os.fspath(name))
    for ext in (".fits.gz", ".fits", ".fit", ".asdf"):
        if base.lower().endswith(ext):
            base = base[: -len(ext)]
            break
    # Longest suffix first, so "_0_ramp_fit" wins over "_ramp_fit".
    for suffix in sorted(KNOWN_SUFFIXES, key=len, reverse=True):
        if base.endswith("_" + suffix):
            return base[: -len(suffix) - 1]
    return base


def make_output_path(input_name, output_file=None, output_dir=None, suffix=None, index=None,
                     ext=".fits"):
    """``<output_dir>/<root>[_<index>]_<suffix><ext>``.

    ``output_file`` replaces the root derived from the input (its own suffix is removed), and
    ``output_dir`` defaults to the current directory, as in the official pipeline.
    """
    root = split_root(output_file) if output_file else split_root(input_name or "step_output")
    if output_file and os.path.dirname(output_file) and not output_dir:
        output_dir = os.path.dirname(output_file)
    parts = [root]
    if index is not None:
        parts.append(str(index))
    if suffix:
        parts.append(suffix)
    name = "_".join(parts) + (ext if ext.startswith(".") else "." + ext)
    if output_dir:
        ensure_folder(output_dir)
        return os.path.join(output_dir, name)
    return name


def ensure_folder(folder):
    """Create the output folder if needed; a one-line error when it cannot be one."""
    if os.path.isdir(folder):
        return
    if os.path.exists(folder):
        raise BadInputError(f"output folder {folder}: exists and is not a folder")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise BadInputError(f"output folder {folder}: cannot be created ({exc.strerror})") from None


def check_product_path(path):
    """A one-line error, before any work is done, when a product cannot be written at ``path``."""
    if os.path.isdir(path):
        raise BadInputError(f"{path}: a folder has the product's name; the product cannot be written")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BadInputError(f"output folder {folder}: not writable")


@contextlib.contextmanager
def withdrawn_on_failure(first):
    """Remove the already written product ``first`` when writing the rest of its set fails
    (a full disk, an interruption): a reader never finds a ``_rateints`` without its ``_rate``."""
    try:
        yield
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(first)
        if isinstance(exc, Ramp2SlopeError):
            raise type(exc)(f"{exc}; {os.path.basename(first)} was withdrawn with it, so no "
                            f"product of the set is left") from None
        raise
