"""Data models: FITS round trips, class selection, and interoperability with stdatamodels."""
import os
import warnings

import numpy as np
import pytest
from astropy.io import fits

from ramp2slope import datamodels
from ramp2slope.datamodels import dqflags
from ramp2slope.errors import BadInputError


def _level1b(path, nints=2, ngroups=3, ny=6, nx=8, zeroframe=True, extra_keyword=True):
    rng = np.random.default_rng(1)
    sci = rng.integers(1000, 60000, size=(nints, ngroups, ny, nx), dtype=np.uint16)
    primary = fits.PrimaryHDU()
    h = primary.header
    h["DATAMODL"] = "Level1bModel"
    h["TELESCOP"] = "JWST"
    h["INSTRUME"] = "NIRCAM"
    h["DETECTOR"] = "NRCA1"
    h["NINTS"], h["NGROUPS"], h["NFRAMES"], h["GROUPGAP"] = nints, ngroups, 1, 0
    h["TFRAME"], h["TGROUP"] = 10.73677, 10.73677
    h["ZEROFRAM"] = zeroframe
    h["SUBARRAY"] = "FULL"
    if extra_keyword:
        h["MYKEY"] = ("kept", "a keyword no schema knows")
    hdus = [primary, fits.ImageHDU(sci, name="SCI")]
    if zeroframe:
        hdus.append(fits.ImageHDU(sci[:, 0] // 2, name="ZEROFRAME"))
    int_times = np.zeros(nints, dtype=[("integration_number", ">i4"), ("int_start_MJD_UTC", ">f8")])
    int_times["integration_number"] = np.arange(1, nints + 1)
    hdus.append(fits.BinTableHDU(int_times, name="INT_TIMES"))
    fits.HDUList(hdus).writeto(path)
    return sci


def test_dqflags_values():
    assert dqflags.pixel["DO_NOT_USE"] == 1
    assert dqflags.pixel["SATURATED"] == 2
    assert dqflags.pixel["JUMP_DET"] == 4
    assert dqflags.pixel["NO_GAIN_VALUE"] == 524288
    assert dqflags.pixel["REFERENCE_PIXEL"] == 2**31
    assert dqflags.group["CHARGELOSS"] == 128
    assert dqflags.interpret_bit_flags(2**31 + 3) == ["DO_NOT_USE", "SATURATED", "REFERENCE_PIXEL"]


def test_level1b_opens_as_float32_ramp(tmp_path):
    path = tmp_path / "jw_uncal.fits"
    sci = _level1b(path)
    model = datamodels.open(path)
    assert isinstance(model, datamodels.RampModel)
    assert model.data.dtype == np.float32 and model.data.shape == sci.shape
    np.testing.assert_array_equal(model.data, sci.astype(np.float32))
    assert model.zeroframe.dtype == np.float32
    assert model.pixeldq.dtype == np.uint32 and not model.pixeldq.any()
    assert model.groupdq.dtype == np.uint8 and model.groupdq.shape == sci.shape
    assert model.meta.exposure.ngroups == 3
    assert model.meta.exposure.zero_frame is True
    assert model.meta.instrument.detector == "NRCA1"
    assert model.meta.exposure.drop_frames1 is None
    assert len(model.int_times) == 2


def test_roundtrip_keeps_arrays_tables_and_unknown_keywords(tmp_path):
    src = tmp_path / "jw_uncal.fits"
    _level1b(src)
    model = datamodels.open(src)
    model.groupdq[0, 1, 2, 3] = dqflags.group["JUMP_DET"]
    model.pixeldq[1, 1] = dqflags.pixel["REFERENCE_PIXEL"] | dqflags.pixel["HOT"]
    model.meta.cal_step.dq_init = "COMPLETE"
    out = model.save(str(tmp_path / "jw_dq_init.fits"))
    again = datamodels.open(out)
    assert isinstance(again, datamodels.RampModel)
    np.testing.assert_array_equal(again.data, model.data)
    np.testing.assert_array_equal(again.groupdq, model.groupdq)
    assert again.pixeldq[1, 1] == model.pixeldq[1, 1]
    assert again.meta.cal_step.dq_init == "COMPLETE"
    assert again.meta.filename == "jw_dq_init.fits"
    assert again.primary_header["MYKEY"] == "kept"
    assert again.meta.model_type == "RampModel"
    np.testing.assert_array_equal(again.int_times["integration_number"], [1, 2])


def test_model_copy_is_independent():
    model = datamodels.RampModel((1, 2, 3, 4))
    model.meta.exposure.ngroups = 2
    clone = model.copy()
    clone.data[...] = 5
    clone.meta.exposure.ngroups = 7
    assert model.data.max() == 0 and model.meta.exposure.ngroups == 2


def test_open_picks_class_from_datamodl_or_shape(tmp_path):
    image = datamodels.ImageModel(np.ones((4, 5), np.float32))
    path = image.save(str(tmp_path / "x_rate.fits"))
    assert isinstance(datamodels.open(path), datamodels.ImageModel)
    with fits.open(path) as hdul:
        assert hdul["SCI"].header["BUNIT"] == "DN/s"
    # No DATAMODL: 3-D SCI is a CubeModel
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.zeros((2, 3, 4), np.float32), name="SCI")]).writeto(
        tmp_path / "cube.fits")
    assert isinstance(datamodels.open(tmp_path / "cube.fits"), datamodels.CubeModel)


@pytest.mark.parametrize("problem", ["truncated", "not_fits", "no_sci", "sci_3d", "missing"])
def test_bad_files_give_one_line_errors(tmp_path, problem):
    path = tmp_path / "bad_uncal.fits"
    if problem == "truncated":
        _level1b(path, nints=2, ngroups=4, ny=64, nx=64)
        size = os.path.getsize(path)
        with open(path, "r+b") as handle:
            handle.truncate(size // 2)
    elif problem == "not_fits":
        path.write_text("this is not a FITS file\n" * 10)
    elif problem == "no_sci":
        fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.zeros((3, 3)), name="OTHER")]).writeto(path)
    elif problem == "sci_3d":
        h = fits.PrimaryHDU()
        h.header["DATAMODL"] = "RampModel"
        fits.HDUList([h, fits.ImageHDU(np.zeros((2, 3, 3), np.float32), name="SCI")]).writeto(path)
    with pytest.raises(BadInputError) as info:
        datamodels.open(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message


def test_save_is_atomic_on_failure(tmp_path, monkeypatch):
    model = datamodels.ImageModel(np.ones((4, 5), np.float32))
    target = tmp_path / "out_rate.fits"

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(fits.HDUList, "writeto", boom)
    with pytest.raises(RuntimeError):
        model.save(str(target))
    assert list(tmp_path.iterdir()) == []


# -- interoperability with the official data models ----------------------------------------------

@pytest.mark.oracle
def test_our_products_open_in_stdatamodels_without_warnings(tmp_path):
    sdm = pytest.importorskip("stdatamodels.jwst.datamodels")
    from stdatamodels.exceptions import ValidationWarning

    ramp = datamodels.RampModel((1, 2, 5, 6))
    ramp.meta.instrument.name = "NIRCAM"
    ramp.meta.instrument.detector = "NRCA1"
    ramp.meta.exposure.ngroups = 2
    ramp.meta.exposure.zero_frame = False
    ramp.meta.cal_step.superbias = "COMPLETE"
    ramp.pixeldq[0, 0] = dqflags.pixel["REFERENCE_PIXEL"]
    ramp.average_dark_current = np.full((5, 6), 0.5, np.float32)
    rate = datamodels.ImageModel(np.arange(30, dtype=np.float32).reshape(5, 6))
    rate.var_poisson = np.ones((5, 6), np.float32)
    rate.var_rnoise = np.ones((5, 6), np.float32)
    rate.meta.exposure.group_time = 10.5
    cube = datamodels.CubeModel(np.zeros((2, 5, 6), np.float32))
    fitopt = datamodels.RampFitOutputModel(slope=np.zeros((1, 1, 5, 6), np.float32),
                                           pedestal=np.zeros((1, 5, 6), np.float32))
    expected = {"RampModel": ramp, "ImageModel": rate, "CubeModel": cube, "RampFitOutputModel": fitopt}
    for name, model in expected.items():
        path = model.save(str(tmp_path / f"x_{name}.fits"))
        with warnings.catch_warnings():
            warnings.simplefilter("error", ValidationWarning)
            theirs = sdm.open(path)
        assert type(theirs).__name__ == name
        ours = datamodels.open(path)
        primary = ours.primary_array
        np.testing.assert_array_equal(getattr(theirs, primary), getattr(ours, primary))
    theirs = sdm.open(str(tmp_path / "x_RampModel.fits"))
    assert theirs.meta.instrument.detector == "NRCA1"
    assert theirs.meta.cal_step.superbias == "COMPLETE"
    assert theirs.pixeldq[0, 0] == dqflags.pixel["REFERENCE_PIXEL"]
    np.testing.assert_array_equal(theirs.average_dark_current, ramp.average_dark_current)
    theirs = sdm.open(str(tmp_path / "x_ImageModel.fits"))
    assert theirs.meta.exposure.group_time == 10.5
    assert theirs.meta.bunit_data == "DN/s"


@pytest.mark.oracle
def test_stdatamodels_files_open_in_ours(tmp_path):
    sdm = pytest.importorskip("stdatamodels.jwst.datamodels")
    theirs = sdm.RampModel((2, 3, 5, 6))
    theirs.data[...] = np.arange(theirs.data.size, dtype=np.float32).reshape(theirs.data.shape)
    theirs.groupdq[1, 2, 3, 4] = 4
    theirs.pixeldq[2, 2] = 1
    theirs.meta.instrument.name = "NIRCAM"
    theirs.meta.instrument.detector = "NRCBLONG"
    theirs.meta.exposure.ngroups = 3
    theirs.meta.exposure.nframes = 4
    theirs.meta.exposure.group_time = 21.0
    theirs.meta.subarray.name = "FULL"
    path = str(tmp_path / "theirs_ramp.fits")
    theirs.save(path)
    ours = datamodels.open(path)
    assert isinstance(ours, datamodels.RampModel)
    np.testing.assert_array_equal(ours.data, theirs.data)
    np.testing.assert_array_equal(ours.groupdq, theirs.groupdq)
    np.testing.assert_array_equal(ours.pixeldq, theirs.pixeldq)
    assert ours.meta.instrument.detector == "NRCBLONG"
    assert ours.meta.exposure.nframes == 4
    assert ours.meta.exposure.group_time == 21.0
    assert ours.meta.subarray.name == "FULL"
    # Their ASDF tree is not carried into our products (it would go stale): ours is a stub
    # without metadata, so a value we change is what stdatamodels reads back.
    ours.meta.exposure.group_time = 99.0
    out = ours.save(str(tmp_path / "ours_ramp.fits"))
    with fits.open(out) as hdul:
        assert [h.name for h in hdul].count("ASDF") == 1
        assert b"fits_hash" not in hdul["ASDF"].data["ASDF_METADATA"][0].tobytes()
    assert sdm.open(out).meta.exposure.group_time == 99.0


@pytest.mark.parametrize("name", ["exposé_rate.fits", "two\nlines_rate.fits"])
def test_file_names_fits_refuses_give_a_legal_filename(tmp_path, name):
    from astropy.io import fits

    model = datamodels.ImageModel(np.zeros((4, 4), np.float32))
    path = model.save(str(tmp_path / name))
    header = fits.getheader(path)
    assert header["FILENAME"] == name.replace("é", "?").replace("\n", "?")


def test_read_times_live_in_the_asdf_tree(tmp_path):
    # meta.exposure.read_times has no FITS keyword: saved in the ASDF extension, where
    # stdatamodels (and so jwst's steps) read it, and carried by copies and products
    sdm = pytest.importorskip("stdatamodels.jwst.datamodels")
    times = [[0.28408], [0.5628], [0.84688], [1.1256]]
    model = datamodels.RampModel(np.zeros((1, 4, 3, 5), np.float32))
    assert model.meta.exposure.read_times == []     # unset: the official default
    model.meta.exposure.read_times = times
    path = str(tmp_path / "x_ramp.fits")
    model.copy().save(path)
    again = datamodels.open(path)
    assert again.meta.exposure.read_times == times
    with sdm.open(path) as theirs:
        assert [list(t) for t in theirs.meta.exposure.read_times] == times
    product = datamodels.ImageModel(np.zeros((3, 5), np.float32))
    product.update(again)
    assert product.meta.exposure.read_times == times
    product.meta.exposure.read_times = None
    product.save(str(tmp_path / "x_rate.fits"))
    with sdm.open(str(tmp_path / "x_rate.fits")) as theirs:
        assert not theirs.meta.exposure.read_times


def test_a_removed_keyword_does_not_come_back_from_the_inputs_tree(tmp_path):
    # stdatamodels reads the ASDF tree first and the FITS keywords over it: a keyword removed
    # here (the stripe keywords after collation) must leave the tree too
    sdm = pytest.importorskip("stdatamodels.jwst.datamodels")
    theirs = sdm.RampModel(np.zeros((1, 2, 3, 5), np.float32))
    theirs.meta.subarray.num_superstripe = 2
    theirs.meta.subarray.multistripe_reads1 = 4
    path = str(tmp_path / "in_ramp.fits")
    theirs.save(path)
    with fits.open(path) as hdul:
        assert b"num_superstripe" in hdul["ASDF"].data["ASDF_METADATA"][0].tobytes()
    ours = datamodels.open(path)
    assert ours.meta.subarray.num_superstripe == 2
    ours.meta.subarray.num_superstripe = None
    out = str(tmp_path / "out_ramp.fits")
    ours.save(out)
    with sdm.open(out) as back:
        assert not back.meta.subarray.num_superstripe
        assert back.meta.subarray.multistripe_reads1 == 4


def test_model_from_an_hdulist_in_memory(tmp_path, monkeypatch):
    """As the official models: a model built from an HDUList (no file behind it) holds what the
    file would give, and the private temporary file is gone."""
    import tempfile

    from astropy.io import fits

    path = tmp_path / "image.fits"
    model = datamodels.ImageModel(data=np.arange(12, dtype=np.float32).reshape(3, 4))
    model.meta.instrument.name, model.meta.exposure.type = "NIRSPEC", "NRS_FIXEDSLIT"
    model.save(path)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with fits.open(path) as hdul:
        built = datamodels.ImageModel(hdul)
    np.testing.assert_array_equal(built.data, datamodels.ImageModel(str(path)).data)
    assert built.meta.exposure.type == "NRS_FIXEDSLIT" and built._path is None
    assert built.dq.shape == (3, 4)
    assert os.listdir(scratch) == []


def test_assigning_a_mapping_replaces_a_meta_subtree(tmp_path):
    """``meta.wcsinfo = {...}`` (as the official models take it): the subtree becomes the
    mapping, keywords it does not name are unset, its attributes stay settable, and another
    model's node copies over with its values."""
    model = datamodels.CubeModel((2, 3, 3))
    model.meta.wcsinfo.siaf_yref_sci = 5.0
    model.meta.wcsinfo = {"roll_ref": 1.5, "siaf_xref_sci": 10.0}
    assert model.meta.wcsinfo.roll_ref == 1.5
    assert model.meta.wcsinfo.siaf_yref_sci is None
    path = model.save(str(tmp_path / "cube.fits"))
    with fits.open(path) as hdul:
        assert hdul["SCI"].header["XREF_SCI"] == 10.0 and "YREF_SCI" not in hdul["SCI"].header
    model.meta.wcsinfo.siaf_yref_sci = 20.0
    other = datamodels.CubeModel((2, 3, 3))
    other.meta.wcsinfo = model.meta.wcsinfo
    assert (other.meta.wcsinfo.roll_ref, other.meta.wcsinfo.siaf_xref_sci,
            other.meta.wcsinfo.siaf_yref_sci) == (1.5, 10.0, 20.0)


def test_update_from_an_official_model():
    """``update`` takes an official (stdatamodels) model too: its metadata with a keyword here
    (and the tree-only read times) are copied, the rest is left."""
    sdm = pytest.importorskip("stdatamodels.jwst.datamodels")
    theirs = sdm.RampModel((1, 4, 3, 5))
    theirs.meta.exposure.ngroups = 4
    theirs.meta.exposure.type = "NRC_IMAGE"
    theirs.meta.instrument.detector = "NRCA1"
    theirs.meta.subarray.name = "SUB64P"
    theirs.meta.exposure.read_times = [[1.0], [2.0], [3.0], [4.0]]
    ours = datamodels.ImageModel(np.zeros((3, 5), np.float32)).update(theirs)
    assert (ours.meta.exposure.ngroups, ours.meta.exposure.type, ours.meta.instrument.detector,
            ours.meta.subarray.name) == (4, "NRC_IMAGE", "NRCA1", "SUB64P")
    assert ours.meta.exposure.read_times == [[1.0], [2.0], [3.0], [4.0]]
    assert ours.meta.model_type == "ImageModel"


# ------------------------------------------------------------------------------------------------
# lifetime: a model is freed when its last reference goes, not by the cycle collector
# ------------------------------------------------------------------------------------------------
def _freed_without_the_cycle_collector(make):
    """Whether what ``make()`` returns dies with its last reference, gc disabled."""
    import gc
    import weakref

    gc.collect()
    gc.disable()
    try:
        ref = weakref.ref(make())
        return ref() is None
    finally:
        gc.enable()


def test_models_are_freed_by_reference_counting(tmp_path):
    path = tmp_path / "jw_uncal.fits"
    _level1b(path)

    def used(model):
        # every path through meta: keyword leaves, sub-nodes, tree-only and extra attributes
        model.meta.exposure.ngroups = model.meta.exposure.ngroups or 3
        model.meta.exposure.read_times = [1.0, 2.0]
        model.meta.instrument.detector = "NRCA2"
        model.meta.not_a_keyword = "kept on the node"
        return model

    assert _freed_without_the_cycle_collector(lambda: used(datamodels.open(path)))
    assert _freed_without_the_cycle_collector(lambda: used(datamodels.RampModel((1, 2, 3, 4))))
    assert _freed_without_the_cycle_collector(lambda: used(datamodels.open(path)).copy())
    assert _freed_without_the_cycle_collector(lambda: used(datamodels.open(path)).with_own_headers())
    assert _freed_without_the_cycle_collector(lambda: datamodels.ImageModel(used(datamodels.open(path))))


def test_meta_outlives_its_model_and_copies_keep_their_own(tmp_path):
    import copy

    path = tmp_path / "jw_uncal.fits"
    _level1b(path)
    meta = datamodels.open(path).meta
    assert meta.exposure.ngroups == 3 and meta.instrument.detector == "NRCA1"
    meta.exposure.ngroups = 4
    assert meta.exposure.ngroups == 4

    model = datamodels.open(path)
    model.meta.exposure.read_times = [1.0]
    for other in (model.copy(), model.with_own_headers(), copy.deepcopy(model)):
        other.meta.exposure.ngroups = 9
        other.meta.exposure.read_times = [2.0]
        other._tree["exposure.read_times"] = [3.0]      # the model's own tree is its meta's
        assert other.meta.exposure.read_times == [3.0]
        assert model.meta.exposure.ngroups == 3 and model.meta.exposure.read_times == [1.0]
