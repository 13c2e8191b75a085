"""The fault corpus: hostile, broken and odd variants of one small exposure and its references.

Each variant is made at test time from one simulated SUB160 exposure (2 integrations x 4 groups)
and its reference folder, run through the command line in this process
(``ramp2slope.cli.main``), and must end in its outcome class:

``ok``
    exit 0, ``_rate`` and ``_rateints`` written, every NaN in them flagged DO_NOT_USE, no
    warning beyond those of the untouched exposure, nothing temporary left in the output folder;
``warn``
    as ``ok``, with a warning containing the variant's text;
``skip``
    as ``ok``, with the step named by the variant marked SKIPPED in the products (as jwst skips it);
``none``
    exit 0 with a warning and no rate products: ramp fitting finds no slope at all (jwst
    writes nothing either);
``error``
    exit 2, exactly one line ``ramp2slope: error: <file>: <problem>`` naming the file at fault
    and containing the variant's text, no traceback, and nothing new in the output folder.

A variant that raises (a traceback) fails its test. The decisions behind the classes of the
cases where jwst runs are in docs/reliability.md.
"""
import logging
import os
import shutil
from dataclasses import dataclass, field

import numpy as np
import pytest
from astropy.io import fits

from ramp2slope import cli

ROOT = "jw01234001001_01101_00001_nrcblong"
REFTYPES = ("mask", "saturation", "superbias", "linearity", "dark", "gain", "readnoise")
# The step each reference type belongs to, as named in the products' S_* keywords.
STEP_KEYWORD = {"mask": "S_DQINIT", "saturation": "S_SATURA", "superbias": "S_SUPERB",
                "linearity": "S_LINEAR", "dark": "S_DARK", "gain": "S_RAMP", "readnoise": "S_RAMP"}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """The shared exposure and references, and the warnings the untouched exposure gives."""
    from ramp2slope.simulate import simulate_exposure

    folder = tmp_path_factory.mktemp("corpus")
    sim = simulate_exposure(folder / "sim", subarray="SUB160", ngroups=4, nints=2, seed=11,
                            full_frame_refs=False)
    one = folder / "one"
    one.mkdir()
    single = one / f"{ROOT}_uncal.fits"
    with fits.open(sim.uncal) as hdul:
        hdus = [hdu.copy() for hdu in hdul]
    for hdu in hdus:
        if hdu.name in ("SCI", "ZEROFRAME"):
            hdu.data = hdu.data[:1].copy()
    hdus[0].header["NINTS"] = 1
    hdus[0].header["INTEND"] = 1
    fits.HDUList(hdus).writeto(single)
    paths = {"uncal": str(sim.uncal), "single": str(single),
             "refdir": os.path.dirname(sim.refs["mask"]),
             "refs": {kind: str(path) for kind, path in sim.refs.items()}}
    baseline = set()
    for uncal in (paths["uncal"], paths["single"]):
        case = Case(paths, folder / f"baseline_{len(baseline)}", uncal)
        code, err, warnings = _run(case)
        assert code == 0, err
        baseline |= {_shape_of(w) for w in warnings}
    paths["baseline"] = baseline
    return paths


def _shape_of(message):
    """A warning with its paths and numbers removed, to compare warnings across variants."""
    import re

    return re.sub(r"[-+]?\d[\d.e+-]*", "#", re.sub(r"\S*/\S*", "PATH", message))


@dataclass
class Case:
    """One variant's files: a copy of the exposure, a folder of links to the references (a
    reference the variant changes is copied first), and the output folder."""
    base: dict
    folder: object
    source: str = None
    extra: list = field(default_factory=list)

    def __post_init__(self):
        self.folder = os.fspath(self.folder)
        os.makedirs(self.folder)
        self.uncal = os.path.join(self.folder, f"{ROOT}_uncal.fits")
        shutil.copy(self.source or self.base["uncal"], self.uncal)
        self.refdir = os.path.join(self.folder, "refs")
        os.makedirs(self.refdir)
        for path in self.base["refs"].values():
            os.symlink(path, os.path.join(self.refdir, os.path.basename(path)))
        self.outdir = os.path.join(self.folder, "out")
        self.blame = self.uncal     # the file the one-line error must name
        self.preexisting = set()

    def ref(self, kind):
        """A private copy of one reference (replacing its link), to be changed; it is blamed."""
        path = os.path.join(self.refdir, os.path.basename(self.base["refs"][kind]))
        os.unlink(path)
        shutil.copy(self.base["refs"][kind], path)
        self.blame = path
        return path

    def rename_uncal(self, name):
        new = os.path.join(self.folder, name)
        os.rename(self.uncal, new)
        self.uncal = self.blame = new

    def argv(self):
        return ["run", self.uncal, "--refdir", self.refdir, "--output-dir", self.outdir,
                "--threads", "1", *self.extra]


def edit(path, ext=0, **cards):
    """Set (or with None delete) header cards; data are left as stored."""
    with fits.open(path, mode="update", do_not_scale_image_data=True) as hdul:
        header = hdul[ext].header
        for key, value in cards.items():
            key = key.replace("_", "-") if key in ("DATE_OBS", "TIME_OBS") else key
            if value is None:
                del header[key]
            else:
                header[key] = value


def rewrite(path, change):
    """Read every HDU, let ``change`` edit the list, write it back (raw counts as uint16)."""
    with fits.open(path) as hdul:
        hdus = [hdu.copy() for hdu in hdul]
    hdus = change(hdus) or hdus
    fits.HDUList(hdus).writeto(path, overwrite=True, output_verify="silentfix")


def drop(*names):
    return lambda hdus: [h for h in hdus if h.name not in names]


def index_of(hdus, name):
    return next(i for i, h in enumerate(hdus) if h.name == name)


def raw_card(path, key, card):
    """Replace the primary-header card ``key`` by the raw 80 bytes ``card`` (values astropy
    would refuse to write)."""
    with open(path, "r+b") as handle:
        block = handle.read(2880 * 4)
        start = next(i for i in range(0, len(block), 80) if block[i:i + 8] == key.ljust(8).encode())
        handle.seek(start)
        handle.write(card.ljust(80).encode("latin-1")[:80])


def offsets(path):
    """Header and data offsets of every HDU, by name."""
    with fits.open(path) as hdul:
        return {hdu.name: hdu.fileinfo() for hdu in hdul}


def truncate_at(where):
    """Cut the exposure at an offset given relative to its HDUs, e.g. ("SCI", "data", 0.5)."""
    def change(case):
        hdu, part, fraction = where
        size = os.path.getsize(case.uncal)
        if hdu == "end":
            os.truncate(case.uncal, size - part)
            return
        info = offsets(case.uncal)[hdu]
        if part == "header":
            start, length = info["hdrLoc"], info["datLoc"] - info["hdrLoc"]
        else:
            start, length = info["datLoc"], info["datSpan"]
        os.truncate(case.uncal, start + int(length * fraction))
    return change


# ---------------------------------------------------------------------------------------------
# The variants: id -> (build(case), outcome, text). ``text`` is part of the error line, of a
# warning, or (skip) the S_* keyword of the skipped step.
VARIANTS = {}


def variant(name, outcome, text=None, single=False):
    def register(build):
        VARIANTS[name] = (build, outcome, text, single)
        return build
    return register


def add(name, outcome, text, build, single=False):
    VARIANTS[name] = (build, outcome, text, single)


def _blame_refdir(**cards):
    """Header edits after which no reference in the folder matches: the folder is named."""
    def build(case):
        edit(case.uncal, **cards)
        case.blame = case.refdir
    return build


# -- the untouched exposure, both paths (streamed and whole) -----------------------------------
add("untouched", "ok", None, lambda case: None)
add("untouched_single_integration", "ok", None, lambda case: None, single=True)

# -- header values ------------------------------------------------------------------------------
add("control_char_in_value", "error", "TARGNAME",
    lambda case: raw_card(case.uncal, "TARGNAME", "TARGNAME= 'SIM\x07FIELD'"))
add("control_char_in_filter", "error", "FILTER",
    lambda case: raw_card(case.uncal, "FILTER", "FILTER  = 'F44\x1bW'"))
add("newline_in_file_name", "ok", None, lambda case: case.rename_uncal(f"a\nb_{ROOT}_uncal.fits"))
add("non_ascii_file_name", "ok", None, lambda case: case.rename_uncal(f"é_{ROOT}_uncal.fits"))
add("space_in_file_name", "ok", None, lambda case: case.rename_uncal(f"my run {ROOT}_uncal.fits"))
add("long_title", "ok", None, lambda case: edit(case.uncal, TITLE="x" * 500))
add("non_ascii_in_card_bytes", "ok", None,
    lambda case: raw_card(case.uncal, "TARGPROP", "TARGPROP= 'Gr\xfcn'"))
add("unknown_detector", "error", "no MASK reference file for NIRCAM/NRCX9", _blame_refdir(DETECTOR="NRCX9"))
add("miri_exposure", "error", "MIRI", lambda case: edit(case.uncal, INSTRUME="MIRI"))
add("unknown_instrument", "error", "no MASK reference file for HUBBLE", _blame_refdir(INSTRUME="HUBBLE"))
add("unknown_readpatt", "ok", None, lambda case: edit(case.uncal, READPATT="FASTEST"))
add("unknown_exp_type", "ok", None, lambda case: edit(case.uncal, EXP_TYPE="NRC_NOTHING"))
add("bad_date_obs", "ok", None, lambda case: edit(case.uncal, DATE_OBS="yesterday"))
add("subarray_name_unknown", "error", "no MASK reference file", _blame_refdir(SUBARRAY="SUB999"))
add("noutputs_4_on_sub160", "ok", None, lambda case: edit(case.uncal, NOUTPUTS=4))
add("fastaxis_zero", "error", "FASTAXIS", lambda case: edit(case.uncal, FASTAXIS=0))

# -- timing keywords ----------------------------------------------------------------------------
add("tgroup_missing", "error", "no TGROUP keyword", lambda case: edit(case.uncal, TGROUP=None))
add("tgroup_zero", "error", "TGROUP=0", lambda case: edit(case.uncal, TGROUP=0.0))
add("tgroup_string", "error", "TGROUP='slow' is not a number",
    lambda case: edit(case.uncal, TGROUP="slow"))
add("tgroup_unparsable_card", "error", "TGROUP card",
    lambda case: raw_card(case.uncal, "TGROUP", "TGROUP  = 0.27.864"))
add("tgroup_negative", "warn", "opposite sign", lambda case: edit(case.uncal, TGROUP=-0.27864))
add("tgroup_huge", "ok", None, lambda case: edit(case.uncal, TGROUP=1e30))
add("nframes_zero", "error", "NFRAMES=0", lambda case: edit(case.uncal, NFRAMES=0))
add("nframes_negative", "error", "NFRAMES=-2", lambda case: edit(case.uncal, NFRAMES=-2))
add("nframes_string", "error", "NFRAMES='one' is not a number", lambda case: edit(case.uncal, NFRAMES="one"))
add("groupgap_huge", "error", "GROUPGAP=100000000", lambda case: edit(case.uncal, GROUPGAP=10 ** 8))
add("groupgap_negative", "error", "GROUPGAP=-1", lambda case: edit(case.uncal, GROUPGAP=-1))
add("tframe_string", "error", "TFRAME='fast' is not a number", lambda case: edit(case.uncal, TFRAME="fast"))
add("tframe_zero", "ok", None, lambda case: edit(case.uncal, TFRAME=0.0))
add("frmdivsr_zero", "warn", "FRMDIVSR=0", lambda case: edit(case.uncal, FRMDIVSR=0))
add("frmdivsr_two", "ok", None, lambda case: edit(case.uncal, FRMDIVSR=2))
add("frmdivsr_string", "error", "FRMDIVSR='x' is not a number", lambda case: edit(case.uncal, FRMDIVSR="x"))
add("frmdivsr_zero_single", "warn", "FRMDIVSR=0", lambda case: edit(case.uncal, FRMDIVSR=0), single=True)

# -- keywords that disagree with the data -------------------------------------------------------
add("ngroups_3", "warn", "NGROUPS=3 but SCI has 4 groups", lambda case: edit(case.uncal, NGROUPS=3))
add("ngroups_7", "warn", "NGROUPS=7 but SCI has 4 groups", lambda case: edit(case.uncal, NGROUPS=7))
add("ngroups_string", "error", "NGROUPS='four' is not a number", lambda case: edit(case.uncal, NGROUPS="four"))
add("ngroups_zero", "warn", "NGROUPS=0 but SCI has 4 groups", lambda case: edit(case.uncal, NGROUPS=0))
add("nints_0", "warn", "NINTS=0 but SCI has 2 integrations", lambda case: edit(case.uncal, NINTS=0))
add("nints_5", "warn", "NINTS=5 but SCI has 2 integrations", lambda case: edit(case.uncal, NINTS=5))
add("nints_5_single", "warn", "NINTS=5 but SCI has 1 integrations",
    lambda case: edit(case.uncal, NINTS=5), single=True)
add("nints_string", "error", "NINTS='two' is not a number", lambda case: edit(case.uncal, NINTS="two"))
add("subsize1_mismatch", "error", "SUBSIZE1=150", lambda case: edit(case.uncal, SUBSIZE1=150))
add("subsize2_mismatch", "error", "SUBSIZE2=320", lambda case: edit(case.uncal, SUBSIZE2=320))
add("substrt_outside_detector", "error", "do not contain the science subarray",
    _blame_refdir(SUBSTRT1=2000))
add("zerofram_true_without_zeroframe", "error", "no ZEROFRAME extension", lambda case: rewrite(case.uncal, drop("ZEROFRAME")))
add("zerofram_false_with_zeroframe", "ok", None, lambda case: edit(case.uncal, ZEROFRAM=False))
add("cut_right_after_sci", "error", "no ZEROFRAME extension", truncate_at(("ZEROFRAME", "header", 0)))


def _all_saturated(case):
    with fits.open(case.ref("saturation"), mode="update") as hdul:
        hdul["SCI"].data[:] = 1.0


add("all_saturated", "none", "no slopes", _all_saturated)
add("all_saturated_single", "none", "no slopes", _all_saturated, single=True)

# -- shapes and structures ----------------------------------------------------------------------


def _sci(change):
    def build(case):
        def apply(hdus):
            i = index_of(hdus, "SCI")
            hdus[i] = change(hdus[i]) or hdus[i]
        rewrite(case.uncal, apply)
    return build


def _sci_data(array_of):
    def change(hdu):
        new = fits.ImageHDU(array_of(hdu), name="SCI")
        for key in ("BUNIT",):
            new.header[key] = hdu.header.get(key, "DN")
        return new
    return _sci(change)


add("nints_axis_empty", "error", "SCI holds no data", _sci_data(lambda h: h.data[:0]))
add("ngroups_axis_empty", "error", "SCI holds no data", _sci_data(lambda h: h.data[:, :0]))
add("sci_3d", "error", "SCI must have 4 dimensions", _sci_data(lambda h: h.data[0]))
add("sci_2d", "error", "SCI must have 4 dimensions", _sci_data(lambda h: h.data[0, 0]))
add("sci_5d", "error", "SCI must have 4 dimensions", _sci_data(lambda h: h.data[None]))
add("sci_one_group", "warn", "NGROUPS=4 but SCI has 1 groups", _sci_data(lambda h: h.data[:, :1]))
add("sci_two_groups", "warn", "NGROUPS=4 but SCI has 2 groups", _sci_data(lambda h: h.data[:, :2]))
add("sci_binary_table", "error", "SCI is a BinTableHDU, not an image",
    _sci(lambda h: fits.BinTableHDU.from_columns([fits.Column("x", "E", array=np.zeros(3))], name="SCI")))
add("sci_empty_image", "error", "SCI", _sci(lambda h: fits.ImageHDU(name="SCI")))
add("sci_odd_size", "error", "SUBSIZE1=160 but SCI has 151 columns", _sci_data(lambda h: h.data[:, :, :150, :151]))
add("sci_duplicated", "ok", None,
    lambda case: rewrite(case.uncal, lambda hdus: hdus + [hdus[index_of(hdus, "SCI")].copy()]))
add("sci_nan_first_group", "error", "non-finite",
    _sci_data(lambda h: np.where(np.arange(160) == 3, np.nan, h.data.astype(np.float32))))
add("sci_nan_later_group", "ok", None,
    _sci_data(lambda h: _nan_later(h.data.astype(np.float32))))


def _nan_later(data):
    data[:, 2, 10, 10] = np.nan
    return data


for _dtype in ("uint8", "int32", "uint32", "int64", "float32", "float64"):
    add(f"sci_dtype_{_dtype}", "ok", None,
        _sci_data(lambda h, d=_dtype: np.clip(h.data.astype(np.int64), 0, 255 if d == "uint8"
                                              else None).astype(d)))
add("sci_int16_negative_counts", "warn", "negative",
    _sci_data(lambda h: (h.data.astype(np.int32) - 32768).astype(np.int16)))  # BZERO dropped


def _bscale(value):
    def build(case):
        edit(case.uncal, 1, BSCALE=value)
    return build


add("bscale_zero", "warn", "BSCALE", _bscale(0))
add("bscale_two", "warn", "negative counts", _bscale(2))
add("bscale_string", "error", "BSCALE", _bscale("x"))


def _extension(name, data, ext_type=fits.ImageHDU):
    def build(case):
        rewrite(case.uncal, lambda hdus: hdus + [ext_type(data, name=name)])
    return build


add("pixeldq_right_shape", "ok", None, _extension("PIXELDQ", np.zeros((160, 160), np.uint32)))
add("pixeldq_wrong_shape", "warn", "PIXELDQ", _extension("PIXELDQ", np.zeros((100, 100), np.uint32)))
add("pixeldq_wrong_shape_single", "warn", "PIXELDQ",
    _extension("PIXELDQ", np.zeros((100, 100), np.uint32)), single=True)
add("pixeldq_3d", "warn", "PIXELDQ", _extension("PIXELDQ", np.zeros((2, 160, 160), np.uint32)))
add("pixeldq_float", "ok", None, _extension("PIXELDQ", np.zeros((160, 160), np.float32)))
add("groupdq_right_shape", "ok", None, _extension("GROUPDQ", np.zeros((2, 4, 160, 160), np.uint8)))
add("groupdq_wrong_shape", "warn", "GROUPDQ", _extension("GROUPDQ", np.zeros((1, 4, 160, 160), np.uint8)))
add("unknown_extension", "ok", None, _extension("FOO", np.zeros((3, 3), np.float32)))


def _zeroframe(shape):
    def build(case):
        def apply(hdus):
            i = index_of(hdus, "ZEROFRAME")
            hdus[i] = fits.ImageHDU(np.zeros(shape, np.uint16), name="ZEROFRAME")
        rewrite(case.uncal, apply)
    return build


add("zeroframe_wrong_shape", "error", "ZEROFRAME", _zeroframe((2, 100, 100)))
add("zeroframe_too_few_integrations", "error", "ZEROFRAME", _zeroframe((1, 160, 160)))
add("zeroframe_2d", "error", "no ZEROFRAME extension", _zeroframe((160, 160)))
add("zeroframe_wrong_shape_single", "error", "ZEROFRAME", _zeroframe((1, 100, 100)), single=True)

for _name in ("GROUP", "INT_TIMES", "ASDF"):
    add(f"extension_removed_{_name.lower()}", "ok", None, lambda case, n=_name: rewrite(case.uncal, drop(n)))
add("extension_removed_sci", "error", "no SCI", lambda case: rewrite(case.uncal, drop("SCI")))
add("extensions_removed_all_tables", "ok", None,
    lambda case: rewrite(case.uncal, drop("GROUP", "INT_TIMES", "ASDF")))
add("int_times_as_image", "ok", None,
    lambda case: rewrite(case.uncal, lambda hdus: drop("INT_TIMES")(hdus) + [fits.ImageHDU(np.zeros(3), name="INT_TIMES")]))

# -- each primary keyword the pipeline reads, removed -------------------------------------------
REMOVED = {
    "INSTRUME": ("error", "INSTRUME"), "DETECTOR": ("error", "DETECTOR"),
    "NGROUPS": ("error", "NGROUPS"), "NINTS": ("ok", None), "NFRAMES": ("ok", None),
    "GROUPGAP": ("ok", None), "TGROUP": ("error", "TGROUP"), "TFRAME": ("ok", None),
    "FRMDIVSR": ("ok", None), "READPATT": ("ok", None), "SUBARRAY": ("error", "no MASK reference"),
    "SUBSTRT1": ("error", "SUBSTRT1/2 and SUBSIZE1/2 are missing"),
    "SUBSTRT2": ("error", "SUBSTRT1/2 and SUBSIZE1/2 are missing"),
    "SUBSIZE1": ("error", "SUBSTRT1/2 and SUBSIZE1/2 are missing"),
    "SUBSIZE2": ("error", "SUBSTRT1/2 and SUBSIZE1/2 are missing"),
    "ZEROFRAM": ("ok", None), "EXP_TYPE": ("ok", None), "DATE-OBS": ("ok", None),
    "TIME-OBS": ("ok", None), "EXPSTART": ("ok", None), "FILTER": ("ok", None),
    "PUPIL": ("ok", None), "NOUTPUTS": ("ok", None),
    "FASTAXIS": ("error", "FASTAXIS/SLOWAXIS keywords are missing"),
    "SLOWAXIS": ("error", "FASTAXIS/SLOWAXIS keywords are missing"), "TELESCOP": ("ok", None), "DATAMODL": ("ok", None),
    "CHANNEL": ("ok", None), "MODULE": ("ok", None), "EFFINTTM": ("ok", None),
}
for _key, (_outcome, _text) in REMOVED.items():
    add(f"keyword_removed_{_key.lower().replace('-', '_')}", _outcome, _text,
        _blame_refdir(**{_key: None}) if _text and _text.startswith("no ") else
        lambda case, k=_key: edit(case.uncal, **{k: None}))

# -- truncated exposures ------------------------------------------------------------------------
TRUNCATIONS = {
    "empty": ("PRIMARY", "header", 0),
    "in_primary_header": ("PRIMARY", "header", 0.5),
    "after_primary": ("SCI", "header", 0),
    "in_sci_header": ("SCI", "header", 0.5),
    "at_sci_data": ("SCI", "data", 0),
    "in_sci_data_1pct": ("SCI", "data", 0.01),
    "in_sci_data_first_integration": ("SCI", "data", 0.3),
    "in_sci_data_half": ("SCI", "data", 0.5),
    "in_sci_data_last_group": ("SCI", "data", 0.9),
    "in_sci_data_last_bytes": ("SCI", "data", 0.999),
    "in_zeroframe_header": ("ZEROFRAME", "header", 0.5),
    "in_zeroframe_data": ("ZEROFRAME", "data", 0.5),
    "in_group_header": ("GROUP", "header", 0.5),
    "in_group_table": ("GROUP", "data", 0.3),
    "in_int_times_header": ("INT_TIMES", "header", 0.5),
    "in_int_times_table": ("INT_TIMES", "data", 0.2),
    "in_asdf_header": ("ASDF", "header", 0.5),
    "in_asdf_data": ("ASDF", "data", 0.05),
    "one_block_short": ("end", 2880, None),
    "one_byte_short": ("end", 1, None),
}
for _name, _where in TRUNCATIONS.items():
    add(f"truncated_{_name}", "error", None, truncate_at(_where))
add("truncated_in_sci_data_single", "error", None, truncate_at(("SCI", "data", 0.5)), single=True)
add("truncated_in_group_table_single", "error", None, truncate_at(("GROUP", "data", 0.3)), single=True)


# -- not an exposure at all ---------------------------------------------------------------------
def _replace_uncal(content):
    def build(case):
        with open(case.uncal, "wb") as handle:
            handle.write(content)
    return build


add("text_file", "error", "not a readable FITS file", _replace_uncal(b"hello\n" * 1000))
add("fits_junk_after_simple", "error", None, _replace_uncal(b"SIMPLE  =                    T" + b"\0" * 5000))
add("primary_only", "error", None,
    lambda case: fits.HDUList([fits.PrimaryHDU()]).writeto(case.uncal, overwrite=True))
add("reference_file_as_input", "error", "not a raw ramp",
    lambda case: shutil.copy(case.base["refs"]["gain"], case.uncal))
add("input_missing", "error", "no such file", lambda case: os.unlink(case.uncal))


def _input_folder(case):
    os.unlink(case.uncal)
    os.mkdir(case.uncal)


add("input_is_folder", "error", None, _input_folder)


# -- references ---------------------------------------------------------------------------------
def _junk(name, content=b"", link=None, folder=False):
    def build(case):
        path = os.path.join(case.refdir, name)
        if link:
            os.symlink(os.path.join(case.refdir, link), path)
        elif folder:
            os.mkdir(path)
        else:
            with open(path, "wb") as handle:
                handle.write(content)
    return build


SAID_SKIPPED = ("refdir_dangling_link", "refdir_empty_fits", "refdir_text_as_fits",
                "refdir_folder_named_fits")
add("refdir_dangling_link", "ok", None, _junk("gone.fits", link="nowhere.fits"))
add("refdir_empty_fits", "ok", None, _junk("empty.fits"))
add("refdir_text_as_fits", "ok", None, _junk("notes.fits", b"not fits\n" * 50))
add("refdir_folder_named_fits", "ok", None, _junk("sub.fits", folder=True))
add("refdir_other_files", "ok", None, _junk("README.txt", b"hello"))
add("refdir_fits_without_reftype", "ok", None,
    lambda case: fits.HDUList([fits.PrimaryHDU()]).writeto(os.path.join(case.refdir, "plain.fits")))
add("refdir_truncated_copy_of_a_reference", "error", "is ambiguous",
    lambda case: setattr(case, "blame", case.refdir) or open(os.path.join(case.refdir, "cut.fits"), "wb").write(
        open(case.base["refs"]["gain"], "rb").read()[:5000]))


def _refdir_missing(case):
    shutil.rmtree(case.refdir)
    case.blame = case.refdir


add("refdir_missing", "error", "refs", _refdir_missing)
for _kind in REFTYPES:
    add(f"reference_removed_{_kind}", "error", _kind.upper(),
        lambda case, k=_kind: (os.unlink(case.ref(k)), setattr(case, "blame", case.refdir)))


def _ref_edit(kind, ext=0, **cards):
    def build(case):
        edit(case.ref(kind), ext, **cards)
    return build


def _ref_rewrite(kind, change):
    def build(case):
        rewrite(case.ref(kind), change)
    return build


def _ref_data(kind, ext, change):
    def build(case):
        with fits.open(case.ref(kind), mode="update") as hdul:
            change(hdul[ext].data)
    return build


for _kind in REFTYPES:
    add(f"reference_truncated_{_kind}", "error", "truncated",
        lambda case, k=_kind: os.truncate(case.ref(k), os.path.getsize(case.ref(k)) // 2 + 17))
    add(f"reference_wrong_detector_{_kind}", "error", _kind.upper(),
        lambda case, k=_kind: (_ref_edit(k, DETECTOR="NRCA1")(case), setattr(case, "blame", case.refdir)))

MAIN_EXTENSION = {"mask": "DQ", "saturation": "SCI", "superbias": "SCI", "linearity": "COEFFS",
                  "dark": "SCI", "gain": "SCI", "readnoise": "SCI"}
for _kind, _ext in MAIN_EXTENSION.items():
    add(f"reference_no_{_ext.lower()}_{_kind}", "error", _ext, _ref_rewrite(_kind, drop(_ext)))
    add(f"reference_{_ext.lower()}_wrong_shape_{_kind}", "error", None,
        _ref_rewrite(_kind, lambda hdus, e=_ext: _cut_ext(hdus, e)))
    add(f"reference_{_ext.lower()}_float64_{_kind}", "ok", None,
        _ref_rewrite(_kind, lambda hdus, e=_ext: _retype_ext(hdus, e)))


def _cut_ext(hdus, name):
    i = index_of(hdus, name)
    hdus[i] = fits.ImageHDU(hdus[i].data[..., :100, :100], header=hdus[i].header, name=name)


def _retype_ext(hdus, name):
    i = index_of(hdus, name)
    data = hdus[i].data
    hdus[i] = fits.ImageHDU(data.astype(np.float64 if data.dtype.kind == "f" else np.int64),
                            name=name)


for _kind in ("mask", "saturation", "superbias", "linearity"):
    add(f"dq_def_without_name_{_kind}", "error", "NAME",
        _ref_rewrite(_kind, lambda hdus: _dq_def_without(hdus, "NAME")))
add("dq_def_without_value_mask", "error", "VALUE",
    _ref_rewrite("mask", lambda hdus: _dq_def_without(hdus, "VALUE")))
add("dq_def_removed_mask", "ok", None, _ref_rewrite("mask", drop("DQ_DEF")))
add("dq_def_unknown_flag_name_mask", "warn", "is not a standard flag",
    _ref_rewrite("mask", lambda hdus: _dq_def_rename(hdus, "NOT_A_FLAG")))


def _dq_def_without(hdus, column):
    i = index_of(hdus, "DQ_DEF")
    cols = [c for c in hdus[i].columns if c.name.upper() != column]
    hdus[i] = fits.BinTableHDU.from_columns(cols, name="DQ_DEF")


def _dq_def_rename(hdus, name):
    i = index_of(hdus, "DQ_DEF")
    hdus[i].data["NAME"][0] = name


# reference windows, sizes and read patterns
add("reference_other_window_mask", "error", "do not contain the science subarray",
    _ref_edit("mask", SUBSTRT2=951))
add("reference_other_window_gain", "error", "do not contain the science subarray",
    _ref_edit("gain", SUBSTRT1=915))
add("reference_other_window_dark", "ok", None, _ref_edit("dark", SUBSTRT1=915))   # as jwst
add("reference_other_subarray_name_dark", "error", "no DARK reference file",
    lambda case: (_ref_edit("dark", SUBARRAY="SUB320")(case), setattr(case, "blame", case.refdir)))


def _short_dark(case):
    def change(hdus):
        for hdu in hdus:
            if hdu.name in ("SCI", "ERR"):
                hdu.data = hdu.data[:2].copy()
        hdus[0].header["NGROUPS"] = 2
    rewrite(case.ref("dark"), change)


add("dark_fewer_frames_than_needed", "warn", "extrapolated", _short_dark)
add("dark_fewer_frames_than_needed_single", "warn", "extrapolated", _short_dark, single=True)
add("dark_nframes_4", "skip", "S_DARK", _ref_edit("dark", NFRAMES=4))

# -- hostile but valid values -------------------------------------------------------------------
add("dark_1e15", "warn", "dark", _ref_data("dark", "SCI", lambda d: d.__setitem__((slice(None), slice(0, 5)), 1e15)))
add("dark_nan", "warn", "dark", _ref_data("dark", "SCI", lambda d: d.__setitem__((slice(None), 7, 7), np.nan)))
add("linearity_inf", "warn", "non-finite linearity",
    _ref_data("linearity", "COEFFS", lambda d: d.__setitem__((2, slice(0, 5)), np.inf)))
add("linearity_nan", "warn", "non-finite linearity",
    _ref_data("linearity", "COEFFS", lambda d: d.__setitem__((1, 3), np.nan)))
add("readnoise_zero", "warn", "read noise", _ref_data("readnoise", "SCI", lambda d: d.__setitem__(slice(0, 10), 0)))
add("readnoise_nan", "warn", "read noise", _ref_data("readnoise", "SCI", lambda d: d.__setitem__(slice(0, 10), np.nan)))
add("readnoise_all_zero", "warn", "read noise", _ref_data("readnoise", "SCI", lambda d: d.__setitem__(Ellipsis, 0)))
add("gain_zero", "warn", "gain", _ref_data("gain", "SCI", lambda d: d.__setitem__(slice(0, 5), 0)))
add("gain_nan", "warn", "gain", _ref_data("gain", "SCI", lambda d: d.__setitem__(slice(0, 5), np.nan)))
add("gain_negative", "warn", "gain", _ref_data("gain", "SCI", lambda d: d.__setitem__(slice(0, 5), -1)))
add("saturation_nan", "ok", None, _ref_data("saturation", "SCI", lambda d: d.__setitem__(slice(0, 5), np.nan)))
add("saturation_zero", "none", "no slopes", _ref_data("saturation", "SCI", lambda d: d.__setitem__(Ellipsis, 0)))
add("superbias_nan", "ok", None, _ref_data("superbias", "SCI", lambda d: d.__setitem__(slice(0, 5), np.nan)))
add("superbias_1e15", "ok", None, _ref_data("superbias", "SCI", lambda d: d.__setitem__(slice(0, 5), 1e15)))
add("mask_all_do_not_use", "ok", None, _ref_data("mask", "DQ", lambda d: d.__setitem__(Ellipsis, 1)))
add("mask_every_bit", "ok", None, _ref_data("mask", "DQ", lambda d: d.__setitem__(Ellipsis, 0x7FFFFFFF)))
add("sci_all_zero", "ok", None, _sci_data(lambda h: np.zeros(h.data.shape, np.uint16)))
add("sci_all_max", "none", "no slopes", _sci_data(lambda h: np.full(h.data.shape, 65535, np.uint16)))


# -- parameters and overrides -------------------------------------------------------------------
def _extra(*args, blame=None):
    def build(case):
        case.extra += [a.format(refs=case.refdir, out=case.outdir) for a in args]
        if blame == "argument":
            case.blame = ""
    return build


add("override_not_applicable_dark", "skip", "S_DARK", _extra("--steps.dark_current.override_dark=N/A"))
add("override_not_applicable_linearity", "skip", "S_LINEAR", _extra("--steps.linearity.override_linearity=N/A"))
add("override_not_applicable_mask", "skip", "S_DQINIT", _extra("--steps.dq_init.override_mask=N/A"))
add("override_missing_file", "error", "nowhere.fits",
    _extra("--steps.dark_current.override_dark={refs}/nowhere.fits", blame="argument"))
add("override_wrong_type", "error", "GAIN",
    _extra(f"--steps.dark_current.override_dark={{refs}}/{ROOT}_gain.fits", blame="argument"))
add("bad_parameter_value", "error", "rejection_threshold",
    _extra("--steps.jump.rejection_threshold=lots", blame="argument"))
add("unknown_step", "error", "nosuchstep", _extra("--steps.nosuchstep.x=1", blame="argument"))
add("unknown_parameter", "error", "nosuchparameter", _extra("--steps.jump.nosuchparameter=1", blame="argument"))
add("threads_zero", "error", "threads", _extra("--threads", "0", blame="argument"))


# -- outputs ------------------------------------------------------------------------------------
def _output_is_file(case):
    with open(case.outdir, "w") as handle:
        handle.write("x")
    case.blame = case.outdir


def _product_is_folder(suffix):
    def build(case):
        path = os.path.join(case.outdir, f"{ROOT}_{suffix}.fits")
        os.makedirs(path)
        case.preexisting = {os.path.basename(path)}
        case.blame = path
    return build


def _stale_leftovers(case):
    """What a run of this host killed with SIGKILL leaves (its pid no longer exists)."""
    from ramp2slope.runtime.owners import owner_tag

    dead = owner_tag().rsplit("-", 1)[0] + "-999999999"
    os.makedirs(case.outdir)
    os.makedirs(os.path.join(case.outdir, f".ramp2slope-scratch-{dead}-abc"))
    open(os.path.join(case.outdir, f".{ROOT}_rate.fits.{dead}-x.part"), "w").close()


def _previous_products(case):
    os.makedirs(case.outdir)
    for suffix in ("rate", "rateints"):
        open(os.path.join(case.outdir, f"{ROOT}_{suffix}.fits"), "w").write("old")


add("output_dir_is_a_file", "error", "not a folder", _output_is_file)
add("rate_name_taken_by_folder", "error", "a folder has the product's name", _product_is_folder("rate"))
add("rateints_name_taken_by_folder", "error", "a folder has the product's name", _product_is_folder("rateints"))
add("output_dir_nested_new", "ok", None, lambda case: setattr(case, "outdir", os.path.join(case.outdir, "a", "b")))
add("output_dir_stale_leftovers_of_dead_run", "ok", None, _stale_leftovers)
add("output_dir_previous_products", "ok", None, _previous_products)


# ---------------------------------------------------------------------------------------------
class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _run(case):
    """Run the command line in this process: (exit code, stderr, warning messages)."""
    import contextlib
    import io

    records = _Records()
    original = cli._setup_logging

    def setup(*args, **kwargs):
        original(*args, **kwargs)
        logging.getLogger("ramp2slope").addHandler(records)

    err = io.StringIO()
    cli._setup_logging = setup
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = cli.main(case.argv())
            except SystemExit as exc:    # argparse's own usage errors
                code = exc.code
    finally:
        cli._setup_logging = original
        logging.getLogger("ramp2slope").removeHandler(records)
    return code, err.getvalue(), records.messages


def _temporary(names):
    return [n for n in names if n.startswith(".") or n.endswith(".part")]


def _check_products(case):
    names = os.listdir(case.outdir)
    assert not _temporary(names), names
    root = os.path.basename(case.uncal)[:-len("_uncal.fits")]
    for suffix in ("rate", "rateints"):
        path = os.path.join(case.outdir, f"{root}_{suffix}.fits")
        with fits.open(path) as hdul:
            sci, dq = hdul["SCI"].data, hdul["DQ"].data
            unflagged = np.isnan(sci) & ((dq & 1) == 0)
            assert not unflagged.any(), f"{suffix}: {int(unflagged.sum())} NaN without DO_NOT_USE"
            header = hdul[0].header
    return header


@pytest.mark.parametrize("name", list(VARIANTS))
def test_fault_corpus(base, tmp_path, name):
    build, outcome, text, single = VARIANTS[name]
    case = Case(base, tmp_path / "case", base["single"] if single else None)
    build(case)
    before = set(os.listdir(case.outdir)) if os.path.isdir(case.outdir) else set()
    code, err, warnings = _run(case)
    assert "Traceback" not in err, err
    if outcome == "error":
        lines = [line for line in err.splitlines() if line.startswith("ramp2slope: error:")]
        assert code == 2 and len(lines) == 1, f"exit {code}\n{err}"
        assert case.blame in lines[0] or not case.blame and "error:" in lines[0], lines[0]
        assert text is None or text in lines[0], lines[0]
        after = set(os.listdir(case.outdir)) if os.path.isdir(case.outdir) else set()
        assert after == before, sorted(after - before)
        return
    assert code == 0, err
    new = [w for w in warnings if _shape_of(w) not in base["baseline"]]
    if outcome == "none":   # as jwst: no slope at all, so no rate products, and exit 0
        assert any(text in w for w in warnings), f"no warning with {text!r}: {warnings}"
        names = os.listdir(case.outdir) if os.path.isdir(case.outdir) else []
        assert not [n for n in names if n.endswith(("_rate.fits", "_rateints.fits"))], names
        assert not _temporary(names), names
        return
    header = _check_products(case)
    if outcome == "ok":
        assert not new, new
        if name in SAID_SKIPPED:   # what is not a readable FITS file is skipped, said once
            assert err.count(": skipped (") == 1, err
    elif outcome == "warn":
        assert any(text in w for w in warnings), f"no warning with {text!r}: {warnings}"
    elif outcome == "skip":
        assert header[text] == "SKIPPED", header[text]


def test_the_corpus_is_large_enough():
    assert len(VARIANTS) >= 150
    classes = {outcome for _, outcome, _, _ in VARIANTS.values()}
    assert classes == {"ok", "warn", "error", "skip", "none"}
