"""Reference files: DQ_DEF translation, subarray cut-outs, finding by header, loader checks."""
import numpy as np
import pytest
from astropy.io import fits

from ramp2slope import datamodels, references
from ramp2slope.datamodels import dqflags
from ramp2slope.errors import ReferenceFileError


def _science(shape=(1, 2, 10, 12), xstart=5, ystart=3, detector="NRCA1", subarray="SUBX",
             readpatt="RAPID"):
    model = datamodels.RampModel(shape)
    model.meta.instrument.name = "NIRCAM"
    model.meta.instrument.detector = detector
    model.meta.subarray.name = subarray
    model.meta.subarray.xstart, model.meta.subarray.ystart = xstart, ystart
    model.meta.subarray.xsize, model.meta.subarray.ysize = shape[-1], shape[-2]
    model.meta.exposure.readpatt = readpatt
    return model


def _write_ref(path, reftype, arrays, detector="NRCA1", subarray="GENERIC", readpatt="ANY",
               box=(1, 1, 40, 30), dq_def=None, **keywords):
    primary = fits.PrimaryHDU()
    h = primary.header
    h["REFTYPE"], h["INSTRUME"], h["DETECTOR"] = reftype, "NIRCAM", detector
    h["SUBARRAY"], h["READPATT"] = subarray, readpatt
    h["SUBSTRT1"], h["SUBSTRT2"], h["SUBSIZE1"], h["SUBSIZE2"] = box
    for key, value in keywords.items():
        h[key] = value
    hdus = [primary] + [fits.ImageHDU(value, name=name) for name, value in arrays.items()]
    if dq_def is not None:
        table = np.array(dq_def, dtype=[("BIT", "i4"), ("VALUE", "u4"), ("NAME", "S40"), ("DESCRIPTION", "S80")])
        hdus.append(fits.BinTableHDU(table, name="DQ_DEF"))
    fits.HDUList(hdus).writeto(path)
    return str(path)


def test_dq_def_translation_maps_local_bits_to_standard_flags():
    dq = np.array([[1, 2, 4, 3, 8]], np.uint32)
    dq_def = np.array([(0, 1, "DO_NOT_USE", ""), (1, 2, "HOT", ""), (2, 4, "NOT_A_FLAG", ""),
                       (3, 8, "REFERENCE_PIXEL", "")],
                      dtype=[("BIT", "i4"), ("VALUE", "u4"), ("NAME", "S40"), ("DESCRIPTION", "S80")])
    out = references.translate_dq(dq, dq_def)
    hot, dnu, ref = dqflags.pixel["HOT"], dqflags.pixel["DO_NOT_USE"], dqflags.pixel["REFERENCE_PIXEL"]
    np.testing.assert_array_equal(out, [[dnu, hot, 0, dnu | hot, ref]])
    np.testing.assert_array_equal(references.translate_dq(dq, None), dq)


def test_cutout_uses_substrt_difference_and_rejects_out_of_bounds():
    ref = np.arange(30 * 40, dtype=np.float32).reshape(30, 40)
    cut = references.cutout(ref, (1, 1, 40, 30), (5, 3, 12, 10), "ref.fits")
    np.testing.assert_array_equal(cut, ref[2:12, 4:16])
    assert references.cutout(ref, (1, 1, 40, 30), (1, 1, 40, 30), "r") is ref
    with pytest.raises(ReferenceFileError, match="do not contain"):
        references.cutout(ref, (1, 1, 40, 30), (35, 3, 12, 10), "ref.fits")


def test_subarray_box_defaults_for_full_frame_and_errors_otherwise():
    assert references.subarray_box(fits.Header(), (2048, 2048), "f") == (1, 1, 2048, 2048)
    with pytest.raises(ReferenceFileError, match="SUBSTRT"):
        references.subarray_box(fits.Header(), (100, 100), "f")


def test_loaders_translate_and_cut(tmp_path):
    model = _science()
    dq = np.zeros((30, 40), np.uint32)
    dq[3, 5] = 2  # local bit 2 = HOT
    thresh = np.full((30, 40), 60000, np.float32)
    path = _write_ref(tmp_path / "sat.fits", "SATURATION", {"SCI": thresh, "DQ": dq},
                      dq_def=[(1, 2, "HOT", "hot")])
    sat = references.load_saturation(path, model)
    assert sat.threshold.shape == (10, 12)
    assert sat.dq[1, 1] == dqflags.pixel["HOT"]
    assert sat.dq.sum() == dqflags.pixel["HOT"]


def test_loader_rejects_wrong_detector_and_type(tmp_path):
    model = _science()
    path = _write_ref(tmp_path / "gain.fits", "GAIN", {"SCI": np.ones((30, 40), np.float32)},
                      detector="NRCB1")
    with pytest.raises(ReferenceFileError, match="DETECTOR=NRCB1"):
        references.load_gain(path, model)
    path = _write_ref(tmp_path / "rn.fits", "READNOISE", {"SCI": np.ones((30, 40), np.float32)})
    with pytest.raises(ReferenceFileError, match="not GAIN"):
        references.load_gain(path, model)


def test_named_override_for_another_instrument_is_used_with_a_warning(tmp_path, caplog):
    """jwst uses an override_<reftype> file whatever its header says, and its unit tests rely on
    it for another instrument and an unknown REFTYPE: those are warnings for a named override.
    Another detector or another detector1 type stays an error, as for any file."""
    model = _science()
    gain = np.full((30, 40), 2.5, np.float32)
    path = _write_ref(tmp_path / "named.fits", "FILLER", {"SCI": gain}, detector="N/A")
    with fits.open(path, mode="update") as hdul:
        hdul[0].header["INSTRUME"] = "MIRI"
    found = references.find_reference("gain", model, override=path)
    with caplog.at_level("WARNING", logger="ramp2slope"):
        loaded = references.load_gain(found, model)
    assert np.all(loaded.data == 2.5)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("is a FILLER reference, not GAIN" in w and "override_gain" in w for w in warnings)
    assert any("INSTRUME=MIRI" in w and "override_gain" in w for w in warnings)

    unnamed = tmp_path / "unnamed.fits"
    unnamed.write_bytes((tmp_path / "named.fits").read_bytes())
    with pytest.raises(ReferenceFileError, match="unnamed.fits: is a FILLER reference"):
        references.load_gain(str(unnamed), model)
    for name, keywords, message in (("detector.fits", {"DETECTOR": "NRCB1"}, "DETECTOR=NRCB1"),
                                    ("readnoise.fits", {"REFTYPE": "READNOISE"}, "not GAIN")):
        other = _write_ref(tmp_path / name, "GAIN", {"SCI": gain})
        with fits.open(other, mode="update") as hdul:
            hdul[0].header.update(keywords)
        found = references.find_reference("gain", model, override=other)
        with pytest.raises(ReferenceFileError, match=message):
            references.load_gain(found, model)


def test_dark_must_match_subarray_shape(tmp_path):
    model = _science()
    path = _write_ref(tmp_path / "dark.fits", "DARK", {"SCI": np.zeros((3, 30, 40), np.float32)},
                      NFRAMES=1, GROUPGAP=0, NGROUPS=3)
    with pytest.raises(ReferenceFileError, match="not cut out"):
        references.load_dark(path, model)


def test_finder_priority_specificity_and_errors(tmp_path, monkeypatch):
    model = _science()
    refdir = tmp_path / "refs"
    refdir.mkdir()
    generic = _write_ref(refdir / "gain_generic.fits", "GAIN", {"SCI": np.ones((30, 40), np.float32)})
    specific = _write_ref(refdir / "gain_subx.fits", "GAIN", {"SCI": np.ones((30, 40), np.float32)},
                          subarray="SUBX")
    _write_ref(refdir / "gain_other_det.fits", "GAIN", {"SCI": np.ones((30, 40), np.float32)},
               detector="NRCB1", subarray="SUBX")
    assert references.find_reference("gain", model, refdir=str(refdir)) == specific
    assert references.find_reference("gain", model, override=generic) == generic
    assert references.find_reference("gain", model, override="N/A") == "N/A"
    # The environment variable is used when no directory is given.
    monkeypatch.setenv(references.ENV_REFDIR, str(refdir))
    assert references.find_reference("gain", model) == specific
    monkeypatch.delenv(references.ENV_REFDIR)
    with pytest.raises(ReferenceFileError, match="no MASK reference"):
        references.find_reference("mask", model, refdir=str(refdir))
    with pytest.raises(ReferenceFileError, match="--refdir"):
        references.find_reference("mask", model)
    # Two equally good matches are ambiguous.
    _write_ref(refdir / "gain_subx_copy.fits", "GAIN", {"SCI": np.ones((30, 40), np.float32)},
               subarray="SUBX")
    with pytest.raises(ReferenceFileError, match="ambiguous"):
        references.find_reference("gain", model, refdir=str(refdir))


# ---------------------------------------------------------------- reading straight from the file

def test_dq_def_identity_keeps_defined_bits_only_and_general_case_in_one_pass():
    dnu, hot, warm = dqflags.pixel["DO_NOT_USE"], dqflags.pixel["HOT"], dqflags.pixel["WARM"]
    rec = [("BIT", "i4"), ("VALUE", "u4"), ("NAME", "S40"), ("DESCRIPTION", "S80")]
    identity = np.array([(0, dnu, "DO_NOT_USE", ""), (11, hot, "HOT", "")], dtype=rec)
    dq = np.array([[dnu, hot | warm, warm, 0, dnu | hot]], np.uint32)
    out = references.translate_dq(dq, identity)
    np.testing.assert_array_equal(out, [[dnu, hot, 0, 0, dnu | hot]])  # WARM is not defined
    assert out is not dq and dq[0, 1] == hot | warm  # the input is left alone
    # a multi-bit VALUE sets its flag when any of its bits is set; a lowercase name is not a
    # standard mnemonic (the official lookup is exact) and is ignored
    general = np.array([(0, 3, "HOT", ""), (2, 4, "DO_NOT_USE", ""), (3, 8, "warm", ""),
                        (4, 16, "GOOD", "")], dtype=rec)
    dq = np.array([[1, 2, 3, 4, 8, 16, 5]], np.uint32)
    out = references.translate_dq(dq, general)
    np.testing.assert_array_equal(out, [[hot, hot, hot, dnu, 0, 0, hot | dnu]])
    inplace = references.translate_dq(dq, general, inplace=True)
    assert inplace is dq
    np.testing.assert_array_equal(dq, [[hot, hot, hot, dnu, 0, 0, hot | dnu]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16, np.uint16, np.uint32,
                                   np.int32, np.uint8])
def test_raw_reader_matches_astropy_for_windows_and_planes(tmp_path, dtype):
    from ramp2slope.datamodels.raw_image import ImageLayout

    rng = np.random.default_rng(3)
    if np.dtype(dtype).kind == "f":
        data = rng.normal(0, 1e3, (3, 30, 40)).astype(dtype)
        data[0, 0, 0] = np.nan
    else:
        info = np.iinfo(dtype)
        data = rng.integers(info.min, info.max, (3, 30, 40), endpoint=True, dtype=dtype)
    path = tmp_path / "img.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, name="SCI")]).writeto(path)
    with fits.open(path) as hdulist:
        expected = np.array(hdulist["SCI"].data)
        image = ImageLayout(str(path), hdulist["SCI"])
        assert image.fast
        for target in (np.float32, expected.dtype.newbyteorder("=")):
            got = image.read(target, rows=slice(2, 12), cols=slice(4, 16))
            assert got.flags.c_contiguous and got.dtype == target and got.shape == (3, 10, 12)
            np.testing.assert_array_equal(got, expected[:, 2:12, 4:16].astype(target))
            np.testing.assert_array_equal(image.read(target, planes=1), expected[1].astype(target))
            np.testing.assert_array_equal(image.read(target, planes=slice(1, 3), rows=slice(29, 30)),
                                          expected[1:3, 29:30].astype(target))


def test_loaders_read_only_the_science_window(tmp_path, monkeypatch):
    from ramp2slope.datamodels.raw_image import ImageLayout

    model = _science()  # 10x12 at (5, 3) in a 40x30 reference
    model.meta.exposure.nframes = 4
    rng = np.random.default_rng(1)
    coeffs = rng.normal(0, 1, (4, 30, 40)).astype(np.float32)
    inv = rng.normal(0, 1, (4, 30, 40)).astype(np.float32)
    dq = rng.integers(0, 2, (30, 40), dtype=np.uint32) * np.uint32(dqflags.pixel["REFERENCE_PIXEL"])
    dq[5, 6] |= 1
    path = _write_ref(tmp_path / "lin.fits", "LINEARITY", {"COEFFS": coeffs, "INV_COEFFS": inv, "DQ": dq},
                      dq_def=[(0, 1, "DO_NOT_USE", ""), (31, 2 ** 31, "REFERENCE_PIXEL", "")])
    mapped = []
    real = ImageLayout._read_rows

    def spy(self, handle, start, nrows, row_bytes, x0, out):
        mapped.append(nrows * row_bytes)
        return real(self, handle, start, nrows, row_bytes, x0, out)

    monkeypatch.setattr(ImageLayout, "_read_rows", spy)
    lin = references.load_linearity(path, model)
    np.testing.assert_array_equal(lin.coeffs, coeffs[:, 2:12, 4:16])
    np.testing.assert_array_equal(lin.inv_coeffs, inv[:, 2:12, 4:16])
    np.testing.assert_array_equal(lin.dq, dq[2:12, 4:16])
    assert lin.dq.dtype == np.uint32 and lin.dq[3, 2] & 1
    # 10 rows of each plane (and of the DQ), never the whole extension
    assert sum(mapped) == (4 + 4 + 1) * 10 * 40 * 4
    # without frame averaging the inverse coefficients are not needed and not read
    model.meta.exposure.nframes = 1
    assert references.load_linearity(path, model).inv_coeffs is None


def test_truncated_reference_is_a_one_line_error_naming_the_file(tmp_path):
    model = _science()
    path = _write_ref(tmp_path / "gain.fits", "GAIN", {"SCI": np.ones((30, 40), np.float32)})
    size = len(open(path, "rb").read())
    with open(path, "r+b") as handle:
        handle.truncate(size - 2880)  # the end of the data is gone
    with pytest.raises(ReferenceFileError) as error:
        references.load_gain(path, model)
    message = str(error.value)
    assert path in message and "truncated" in message and "\n" not in message
    dark = _write_ref(tmp_path / "dark.fits", "DARK", {"SCI": np.zeros((4, 10, 12), np.float32)},
                      box=(5, 3, 12, 10), NFRAMES=1, GROUPGAP=0, NGROUPS=4)
    size = len(open(dark, "rb").read())
    with open(dark, "r+b") as handle:
        handle.truncate(size - 2880)
    with pytest.raises(ReferenceFileError, match="truncated"):
        references.load_dark(dark, model)
    # cut inside the header of the last extension (astropy would silently stop before it)
    sat = _write_ref(tmp_path / "sat.fits", "SATURATION", {"SCI": np.ones((30, 40), np.float32),
                                                          "DQ": np.zeros((30, 40), np.uint32)},
                     dq_def=[(0, 1, "DO_NOT_USE", "")])
    size = len(open(sat, "rb").read())
    with open(sat, "r+b") as handle:
        handle.truncate(size - 5000)
    with pytest.raises(ReferenceFileError, match=r"sat\.fits: the file is truncated"):
        references.load_saturation(sat, model)


def test_dark_is_read_plane_by_plane_and_averaged_once_per_run(tmp_path):
    from ramp2slope.dark_current import dark_used, subtract_dark

    model = _science(shape=(2, 3, 10, 12))
    rng = np.random.default_rng(5)
    planes = rng.normal(5, 2, (14, 10, 12)).astype(np.float32)
    planes[3, 2, 2] = np.nan
    path = _write_ref(tmp_path / "dark.fits", "DARK", {"SCI": planes, "ERR": planes,
                                                       "DQ": np.zeros((10, 12), np.uint32)},
                      box=(5, 3, 12, 10), NFRAMES=1, GROUPGAP=0, NGROUPS=14)
    dark = references.load_dark(path, model)
    try:
        data = rng.normal(100, 5, (2, 3, 10, 12)).astype(np.float32)
        expected = data.copy()
        pdq = np.zeros((10, 12), np.uint32)
        subtract_dark(expected, pdq.copy(), planes, dark.dq, 4, 1, 1, 0)
        got = data.copy()
        subtract_dark(got, pdq.copy(), dark.data, dark.dq, 4, 1, 1, 0, reuse=dark.derived)
        np.testing.assert_array_equal(got, expected)
        assert len(dark.derived) == 1
        # a second call (the next integration) reuses the averaged dark
        dark.data.read_plane = None
        again = data.copy()
        subtract_dark(again, pdq.copy(), dark.data, dark.dq, 4, 1, 1, 0, reuse=dark.derived)
        np.testing.assert_array_equal(again, expected)
        del dark.data.read_plane
        used = dark_used(dark.data, 3, 4, 1, 1, 0)
        np.testing.assert_array_equal(used[0], dark_used(planes.copy(), 3, 4, 1, 1, 0)[0])
        assert np.isnan(dark.data.read_plane(3)[2, 2])  # the file is untouched
    finally:
        dark.close()


def test_compressed_and_scaled_images_go_through_astropy(tmp_path):
    model = _science()
    rng = np.random.default_rng(2)
    primary = fits.PrimaryHDU()
    primary.header.update(REFTYPE="GAIN", INSTRUME="NIRCAM", DETECTOR="NRCA1", SUBSTRT1=1,
                          SUBSTRT2=1, SUBSIZE1=40, SUBSIZE2=30)
    path = tmp_path / "gain_comp.fits"
    fits.HDUList([primary, fits.CompImageHDU(rng.normal(2, 0.1, (30, 40)).astype(np.float32),
                                             name="SCI")]).writeto(path)
    expected = fits.getdata(path, 1)[2:12, 4:16]
    np.testing.assert_array_equal(references.load_gain(str(path), model).data, expected)
    scaled = fits.ImageHDU(rng.integers(0, 1000, (30, 40)).astype(np.int16), name="SCI")
    scaled.header["BSCALE"], scaled.header["BZERO"] = 0.5, 3.0
    path = tmp_path / "gain_scaled.fits"
    fits.HDUList([primary, scaled]).writeto(path)
    expected = fits.getdata(path, 1)[2:12, 4:16].astype(np.float32)
    np.testing.assert_array_equal(references.load_gain(str(path), model).data, expected)


# ---------------------------------------------------------------- folder matching, CRDS's rules

def _gain(path, **keywords):
    return _write_ref(path, "GAIN", {"SCI": np.ones((30, 40), np.float32)}, **keywords)


def _dated_science(**kwargs):
    model = _science(**kwargs)
    model.meta.observation.date, model.meta.observation.time = "2023-06-01", "12:00:00.000"
    return model


def test_useafter_picks_the_latest_version_not_after_the_exposure(tmp_path):
    model = _dated_science()
    old = _gain(tmp_path / "gain_v1.fits", USEAFTER="2022-01-01T00:00:00")
    new = _gain(tmp_path / "gain_v2.fits", USEAFTER="2023-01-01T00:00:00")
    _gain(tmp_path / "gain_v3.fits", USEAFTER="2024-01-01T00:00:00")   # after the exposure
    assert references.find_in_directory("gain", model, str(tmp_path)) == new
    # The old date format of CRDS deliveries is read too.
    _gain(tmp_path / "gain_v2b.fits", USEAFTER="Mar 01 2023 00:00:00")
    assert references.find_in_directory("gain", model, str(tmp_path)).endswith("gain_v2b.fits")
    # An earlier exposure gets the version that was valid then.
    model.meta.observation.date = "2022-06-01"
    assert references.find_in_directory("gain", model, str(tmp_path)) == old
    # Versions only for later exposures: a one-line error that says so.
    model.meta.observation.date = "2021-06-01"
    with pytest.raises(ReferenceFileError, match="only after its start"):
        references.find_in_directory("gain", model, str(tmp_path))


def test_specific_match_beats_a_newer_wildcard_file(tmp_path):
    model = _dated_science(readpatt="BRIGHT2")
    specific = _gain(tmp_path / "gain_subx.fits", subarray="SUBX", USEAFTER="2022-01-01T00:00:00")
    _gain(tmp_path / "gain_generic.fits", subarray="GENERIC", USEAFTER="2023-01-01T00:00:00")
    assert references.find_in_directory("gain", model, str(tmp_path)) == specific


def test_pattern_keywords_replace_the_plain_ones(tmp_path):
    model = _dated_science(readpatt="BRIGHT2")
    # READPATT says RAPID but the pattern lists BRIGHT2: it applies.
    listed = _gain(tmp_path / "gain_listed.fits", readpatt="RAPID", P_READPA="RAPID | BRIGHT2 |")
    # A pattern that does not list the exposure's value excludes the file, whatever READPATT says.
    _gain(tmp_path / "gain_other.fits", readpatt="BRIGHT2", P_READPA="RAPID | BRIGHT1 |",
          subarray="SUBX")
    assert references.find_in_directory("gain", model, str(tmp_path)) == listed
    # EXP_TYPE selects only as a pattern: a reference's own EXP_TYPE (the data it was made from)
    # does not exclude it.
    model.meta.exposure.type = "NRC_IMAGE"
    (tmp_path / "gain_listed.fits").unlink()
    (tmp_path / "gain_other.fits").unlink()
    own = _gain(tmp_path / "gain_flat.fits", EXP_TYPE="NRC_FLAT")
    assert references.find_in_directory("gain", model, str(tmp_path)) == own
    _gain(tmp_path / "gain_grism.fits", P_EXP_TY="NRC_WFSS | NRC_TSGRISM |", subarray="SUBX")
    assert references.find_in_directory("gain", model, str(tmp_path)) == own
    image = _gain(tmp_path / "gain_image.fits", P_EXP_TY="NRC_IMAGE | NRC_WFSS |", subarray="SUBX")
    assert references.find_in_directory("gain", model, str(tmp_path)) == image
    # Wildcards in a pattern match anything.
    (tmp_path / "gain_image.fits").unlink()
    generic = _gain(tmp_path / "gain_any.fits", P_DETECT="ANY", P_SUBARR="SUBX",
                    P_EXP_TY="NRC_IMAGE", P_READPA="BRIGHT2", detector="NRCB5")
    assert references.find_in_directory("gain", model, str(tmp_path)) == generic


def test_frame_level_dark_serves_every_read_pattern(tmp_path):
    model = _dated_science(readpatt="MEDIUM8")
    dark = _write_ref(tmp_path / "dark_rapid.fits", "DARK", {"SCI": np.ones((3, 30, 40), np.float32)},
                      readpatt="RAPID", NFRAMES=1, GROUPGAP=0, EXP_TYPE="NRC_DARK")
    assert references.find_in_directory("dark", model, str(tmp_path)) == dark
    # A dark already averaged into groups of one read pattern does not serve another.
    (tmp_path / "dark_rapid.fits").unlink()
    _write_ref(tmp_path / "dark_bright2.fits", "DARK", {"SCI": np.ones((3, 30, 40), np.float32)},
               readpatt="BRIGHT2", NFRAMES=2, GROUPGAP=0)
    assert references.find_in_directory("dark", model, str(tmp_path)) is None
    # A dark of the exposure's own read pattern beats a frame-level one.
    frames = _write_ref(tmp_path / "dark_frames.fits", "DARK", {"SCI": np.ones((3, 30, 40), np.float32)},
                        readpatt="RAPID", NFRAMES=1, GROUPGAP=0)
    assert references.find_in_directory("dark", model, str(tmp_path)) == frames
    medium8 = _write_ref(tmp_path / "dark_medium8.fits", "DARK", {"SCI": np.ones((3, 30, 40), np.float32)},
                         readpatt="MEDIUM8", NFRAMES=8, GROUPGAP=2)
    assert references.find_in_directory("dark", model, str(tmp_path)) == medium8


def test_folder_scan_skips_junk_and_dangling_links(tmp_path):
    model = _dated_science()
    (tmp_path / "notes.fits").write_text("not a FITS file")
    (tmp_path / "gone.fits").symlink_to(tmp_path / "nowhere.fits")
    gain = _gain(tmp_path / "gain.fits")
    assert references.find_in_directory("gain", model, str(tmp_path)) == gain


def test_dq_def_without_name_column_is_a_one_line_error(tmp_path):
    model = _science()
    path = tmp_path / "mask.fits"
    table = np.array([(0, 1, "DO_NOT_USE")], dtype=[("BIT", "i4"), ("VALUE", "u4"), ("DESCRIPTION", "S80")])
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.ones((30, 40), np.uint32), name="DQ"),
                  fits.BinTableHDU(table, name="DQ_DEF")]).writeto(path)
    with fits.open(path, mode="update") as hdul:
        h = hdul[0].header
        h["REFTYPE"], h["INSTRUME"], h["DETECTOR"] = "MASK", "NIRCAM", "NRCA1"
        h["SUBSTRT1"], h["SUBSTRT2"], h["SUBSIZE1"], h["SUBSIZE2"] = 1, 1, 40, 30
    with pytest.raises(ReferenceFileError, match=r"mask.fits: the DQ_DEF table has no NAME column"):
        references.load_mask(str(path), model)


def test_suspicious_reference_values_are_warned_once_with_their_count(tmp_path, caplog):
    model = _science()
    readnoise = np.full((30, 40), 5.0, np.float32)
    readnoise[:4] = 0.0            # rows 3 and 4 fall in the science window
    readnoise[5, :6] = np.nan
    path = _write_ref(tmp_path / "rn.fits", "READNOISE", {"SCI": readnoise})
    gain = np.full((30, 40), 2.0, np.float32)
    gain[5, :7] = -1.0
    gain_path = _write_ref(tmp_path / "gain.fits", "GAIN", {"SCI": gain})
    coeffs = np.zeros((3, 30, 40), np.float32)
    coeffs[1] = 1.0
    coeffs[2, 3, :6] = np.inf
    lin_path = _write_ref(tmp_path / "lin.fits", "LINEARITY", {"COEFFS": coeffs})
    with caplog.at_level("WARNING", logger="ramp2slope"):
        for _ in range(3):          # one warning however often the reference is loaded
            references.load_readnoise(path, model)
        references.load_gain(gain_path, model)
        references.load_linearity(lin_path, model)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines
    # the science window is columns 5-16, rows 3-12 of the reference (box 1,1 40x30)
    window = (slice(2, 12), slice(4, 16))
    assert f"{np.count_nonzero((readnoise[window] == 0) | np.isnan(readnoise[window]))} pixel(s) " \
           f"with a read noise that is zero or NaN" in lines[0]
    assert f"{np.count_nonzero(gain[window] <= 0)} pixel(s) with a gain" in lines[1]
    assert "2 pixel(s) with non-finite linearity coefficients" in lines[2]
