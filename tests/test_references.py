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
