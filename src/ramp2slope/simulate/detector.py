"""NIRCam (and NIRSpec, NIRISS, FGS) detector geometry and readout timing used by the simulator.

Coordinates
-----------
* **DMS (science) frame**: the orientation in which files are stored. SUBSTRT1/2 are 1-based
  positions in the DMS frame of the full 2048 x 2048 detector.
* **Detector frame**: the readout frame. The fast (pixel-by-pixel) read runs along +x, rows are
  read in increasing y, and the four amplifiers are vertical stripes of 512 columns.

For NIRCam ``|FASTAXIS| = 1`` and ``|SLOWAXIS| = 2``: a negative FASTAXIS means the DMS x axis
runs opposite to the detector x axis, a negative SLOWAXIS likewise for y. The signs below are
the flight values; they follow from the science/detector reference points of the NIRCam SIAF
(e.g. NRCA1 flips x, NRCA2 flips y).

Subarray positions are given in the detector frame (the lower-left detector pixel, 1-based,
taken from the SIAF aperture definitions) and converted to DMS SUBSTRT values with the
detector's axis signs, so every detector gets the position its flight subarray really has.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..errors import Ramp2SlopeError

NPIX = 2048          # detector side, pixels
NREF = 4             # width of the reference-pixel border
AMP_WIDTH = 512      # columns per amplifier in the detector frame

#: (FASTAXIS, SLOWAXIS) for every NIRCam detector.
AXES = {
    "NRCA1": (-1, 2), "NRCA2": (1, -2), "NRCA3": (-1, 2), "NRCA4": (1, -2), "NRCALONG": (-1, 2),
    "NRCB1": (1, -2), "NRCB2": (-1, 2), "NRCB3": (1, -2), "NRCB4": (-1, 2), "NRCBLONG": (1, -2),
}

#: Detectors stored transposed (|FASTAXIS| = 2): instrument and the stored (FASTAXIS, SLOWAXIS),
#: as jwst's refpix tests list them. They are the same H2RG detectors with the same SIDECAR
#: readout as NIRCam's; the physics is modelled in the untransposed frame (axes in AXES: the
#: fast read along DMS x) and the files are transposed when written (see ``transposed.py``).
TRANSPOSED = {
    "NRS1": ("NIRSPEC", (2, 1)), "NRS2": ("NIRSPEC", (-2, -1)),
    "NIS": ("NIRISS", (-2, -1)),
    "GUIDER1": ("FGS", (-2, -1)), "GUIDER2": ("FGS", (2, -1)),
}
for _name, (_, (_fast, _slow)) in TRANSPOSED.items():
    # stored y is the untransposed x (the fast direction), stored x the untransposed y
    AXES[_name] = (1 if _fast > 0 else -1, 2 if _slow > 0 else -2)

#: Instrument of each detector.
INSTRUMENT = {name: TRANSPOSED[name][0] if name in TRANSPOSED else "NIRCAM" for name in AXES}


@dataclass(frozen=True)
class InstrumentMode:
    """What an exposure of an instrument other than NIRCam is labelled with: its one simulated
    read pattern (one frame per group, no gap), EXP_TYPE of the exposure and of its DARK,
    TEMPLATE, and its optical-element keywords."""

    readpatt: str
    exp_type: str
    dark_exp_type: str
    template: str
    elements: tuple


INSTRUMENT_MODES = {
    "NIRSPEC": InstrumentMode("NRSRAPID", "NRS_MSASPEC", "NRS_DARK", "NIRSpec MultiObject Spectroscopy",
                              (("FILTER", "F170LP"), ("GRATING", "G235M"))),
    "NIRISS": InstrumentMode("NISRAPID", "NIS_IMAGE", "NIS_DARK", "NIRISS Imaging",
                             (("FILTER", "CLEAR"), ("PUPIL", "F150W"))),
    "FGS": InstrumentMode("FGSRAPID", "FGS_IMAGE", "FGS_DARK", "FGS External Calibration", ()),
}

#: NIRISS SOSS stripes: (stored rows, SUBSTRT2); every column from SUBSTRT1 = 1, read through one
#: output, as the SOSS exposures of jwst's own tests lay them out. An exposure in one is NIS_SOSS,
#: with the GR700XD grism at the pupil wheel's nominal position.
NIS_SOSS_SUBARRAYS = {"SUBSTRIP256": (256, 1793), "SUBSTRIP96": (96, 1803)}
SOSS_MODE = InstrumentMode("NISRAPID", "NIS_SOSS", "NIS_DARK", "NIRISS SOSS",
                           (("FILTER", "CLEAR"), ("PUPIL", "GR700XD")))
SOSS_PWCPOS = 245.79


def instrument_mode(geom):
    """The :class:`InstrumentMode` of an exposure's geometry (None for NIRCam)."""
    if geom.subarray in NIS_SOSS_SUBARRAYS:
        return SOSS_MODE
    return INSTRUMENT_MODES.get(INSTRUMENT[geom.detector])


#: Detector-specific exposure metadata: module, channel, default filter, SIAF aperture prefix.
DETECTOR_INFO = {
    "NRCA1": ("A", "SHORT", "F200W", "NRCA1"),
    "NRCA2": ("A", "SHORT", "F200W", "NRCA2"),
    "NRCA3": ("A", "SHORT", "F200W", "NRCA3"),
    "NRCA4": ("A", "SHORT", "F200W", "NRCA4"),
    "NRCALONG": ("A", "LONG", "F444W", "NRCA5"),
    "NRCB1": ("B", "SHORT", "F200W", "NRCB1"),
    "NRCB2": ("B", "SHORT", "F200W", "NRCB2"),
    "NRCB3": ("B", "SHORT", "F200W", "NRCB3"),
    "NRCB4": ("B", "SHORT", "F200W", "NRCB4"),
    "NRCBLONG": ("B", "LONG", "F444W", "NRCB5"),
    "NRS1": (None, "SHORT", None, "NRS1"),
    "NRS2": (None, "SHORT", None, "NRS2"),
    "NIS": (None, "SHORT", None, "NIS"),
    "GUIDER1": (None, "SHORT", None, "FGS1"),
    "GUIDER2": (None, "SHORT", None, "FGS2"),
}

#: NIRCam read patterns: NFRAMES (frames averaged per group) and GROUPGAP (frames skipped).
READ_PATTERNS = {
    "RAPID": (1, 0), "BRIGHT1": (1, 1), "BRIGHT2": (2, 0), "SHALLOW2": (2, 3),
    "SHALLOW4": (4, 1), "MEDIUM2": (2, 8), "MEDIUM8": (8, 2), "DEEP2": (2, 18), "DEEP8": (8, 12),
}
# the other instruments' one simulated pattern each (see INSTRUMENT_MODES)
READ_PATTERNS.update({"NRSRAPID": (1, 0), "NISRAPID": (1, 0), "FGSRAPID": (1, 0)})


def _corner_table(edge, along, blong):
    """Detector-frame corners of the SUB160/320/640 family (same layout on every SW detector)."""
    low, high = 1, edge
    return {
        "NRCA1": (low, high), "NRCA2": (high, high), "NRCA3": (high, high), "NRCA4": (low, high),
        "NRCALONG": along,
        "NRCB1": (low, high), "NRCB2": (high, high), "NRCB3": (high, high), "NRCB4": (low, high),
        "NRCBLONG": blong,
    }


# name -> (ncols, nrows, noutputs, {detector: (det_x0, det_y0)} or None for "any detector",
#          det corner used when the detector is not listed)
_SUBARRAYS = {
    "FULL": (2048, 2048, 4, None, (1, 1)),
    "SUB640": (640, 640, 1, _corner_table(1409, (705, 705), (665, 709)), None),
    "SUB320": (320, 320, 1, _corner_table(1729, (865, 865), (825, 869)), None),
    "SUB160": (160, 160, 1, _corner_table(1889, (945, 945), (905, 949)), None),
    "SUB400P": (400, 400, 1, {"NRCA3": (1, 1), "NRCALONG": (1, 1),
                              "NRCB1": (1649, 1), "NRCBLONG": (1649, 1)}, None),
    "SUB160P": (160, 160, 1, {"NRCA3": (1, 1), "NRCALONG": (1, 1),
                              "NRCB1": (1889, 1), "NRCBLONG": (1889, 1)}, None),
    "SUB64P": (64, 64, 1, {"NRCA3": (1985, 101), "NRCALONG": (940, 1),
                           "NRCB1": (1985, 1), "NRCBLONG": (1985, 1)}, None),
    # Grism time-series stripes: the first detector rows, all columns, read through 4 outputs.
    # The SIAF defines them on NRCA1/NRCA3/NRCALONG; other detectors get the same detector rows.
    "SUBGRISM256": (2048, 256, 4, None, (1, 1)),
    "SUBGRISM128": (2048, 128, 4, None, (1, 1)),
    "SUBGRISM64": (2048, 64, 4, None, (1, 1)),
}

SUBARRAY_NAMES = tuple(_SUBARRAYS)


@dataclass(frozen=True)
class Geometry:
    """Where an exposure sits on the detector and how it is read out."""

    detector: str
    subarray: str
    xstart: int        # SUBSTRT1 (1-based, DMS)
    ystart: int        # SUBSTRT2
    nx: int            # SUBSIZE1
    ny: int            # SUBSIZE2
    noutputs: int
    fastaxis: int
    slowaxis: int

    @property
    def is_full(self):
        return self.nx == NPIX and self.ny == NPIX

    @property
    def x0(self):
        """0-based DMS column of the first subarray column."""
        return self.xstart - 1

    @property
    def y0(self):
        return self.ystart - 1

    @property
    def slices(self):
        """(y, x) slices of the subarray inside a full-frame DMS array."""
        return slice(self.y0, self.y0 + self.ny), slice(self.x0, self.x0 + self.nx)

    def detector_columns(self):
        """Full-frame detector-frame column index of every DMS column of the subarray."""
        cols = np.arange(self.x0, self.x0 + self.nx)
        return (NPIX - 1 - cols) if self.fastaxis < 0 else cols

    def detector_rows(self):
        """Full-frame detector-frame row index of every DMS row of the subarray."""
        rows = np.arange(self.y0, self.y0 + self.ny)
        return (NPIX - 1 - rows) if self.slowaxis < 0 else rows

    @property
    def frame_time(self):
        return frame_time(self.nx, self.ny, self.noutputs)


def frame_time(nx, ny, noutputs):
    """NIRCam frame time in seconds.

    Each row costs ``nx/noutputs + 12`` pixel clocks of 10 microseconds. Full-width reads through
    4 outputs add one row and one clock per frame; single-output windows add two rows. This
    reproduces the published values: FULL 10.73677 s, SUBGRISM256 1.34669 s, SUBGRISM64
    0.34061 s, SUB640 4.18584 s, SUB400P 1.65624 s, SUB320 1.06904 s, SUB160 0.27864 s,
    SUB64P 0.05016 s.
    """
    if noutputs == 4:
        clocks = (nx // 4 + 12) * (ny + 1) + 1
    else:
        clocks = (nx + 12) * (ny + 2)
    return round(clocks * 1e-5, 5)


def _dms_start(det_start, size, sign):
    """Convert a 1-based detector-frame start to the DMS frame."""
    return det_start if sign > 0 else NPIX + 2 - det_start - size


def geometry(detector="NRCBLONG", subarray=None, size=None, origin=None):
    """Build the :class:`Geometry` for a named subarray, or for a (ny, nx) size.

    ``size=(2048, 2048)`` is FULL. Any other size is a window named GENERIC, read through 4
    outputs if it spans all 2048 columns and through 1 output otherwise, anchored at ``origin``
    (its 1-based stored (SUBSTRT2, SUBSTRT1)), by default the DMS origin (1, 1).
    """
    detector = str(detector).upper()
    if detector not in AXES:
        raise Ramp2SlopeError(f"unknown detector {detector!r}; choose one of {', '.join(AXES)}")
    fast, slow = AXES[detector]
    if subarray is not None and size is not None:
        raise Ramp2SlopeError("give either a subarray name or a size, not both")
    if detector in TRANSPOSED:
        name = None if subarray is None else str(subarray).upper()
        if detector == "NIS" and name in NIS_SOSS_SUBARRAYS:
            if size is not None or origin is not None:
                raise Ramp2SlopeError("give either a subarray name or a size, not both")
            rows, ystart = NIS_SOSS_SUBARRAYS[name]
            return replace(geometry(detector, size=(rows, NPIX), origin=(ystart, 1)), subarray=name)
        if name not in (None, "FULL"):
            named = ["FULL"] + (list(NIS_SOSS_SUBARRAYS) if detector == "NIS" else [])
            raise Ramp2SlopeError(f"{detector}: the simulated subarrays are {', '.join(named)} and "
                                  f"windows given by their size, not {subarray!r}")
        if size is not None:   # given as stored; the model works in the untransposed frame
            size = (int(size[1]), int(size[0]))
        if origin is not None:
            origin = (int(origin[1]), int(origin[0]))
    if subarray is None:
        ny, nx = (NPIX, NPIX) if size is None else (int(size[0]), int(size[1]))
        if (ny, nx) == (NPIX, NPIX):
            subarray = "FULL"
        else:
            if not (8 <= ny <= NPIX and 8 <= nx <= NPIX):
                raise Ramp2SlopeError(f"size {ny}x{nx} is outside 8..2048 pixels per axis")
            nout = 4 if nx == NPIX else 1
            y0, x0 = (1, 1) if origin is None else (int(origin[0]), int(origin[1]))
            if not (1 <= y0 <= NPIX - ny + 1 and 1 <= x0 <= NPIX - nx + 1):
                raise Ramp2SlopeError(f"a {ny}x{nx} window at {origin} does not fit the detector")
            return Geometry(detector, "GENERIC", x0, y0, nx, ny, nout, fast, slow)
    if origin is not None:
        raise Ramp2SlopeError("an origin is for a window given by its size")
    name = str(subarray).upper()
    if name not in _SUBARRAYS:
        raise Ramp2SlopeError(f"unknown subarray {subarray!r}; choose one of {', '.join(_SUBARRAYS)}")
    nx, ny, nout, table, default = _SUBARRAYS[name]
    if table is None:
        det_x0, det_y0 = default
    elif detector in table:
        det_x0, det_y0 = table[detector]
    else:
        raise Ramp2SlopeError(
            f"subarray {name} does not exist on {detector}; it is defined on {', '.join(table)}")
    return Geometry(detector, name, _dms_start(det_x0, nx, fast), _dms_start(det_y0, ny, slow),
                    nx, ny, nout, fast, slow)


@dataclass(frozen=True)
class Readout:
    """Timing of one exposure."""

    readpatt: str
    nframes: int
    groupgap: int
    ngroups: int
    nints: int
    tframe: float

    @property
    def tgroup(self):
        return round((self.nframes + self.groupgap) * self.tframe, 6)

    @property
    def frames_per_int(self):
        """Frames read (or skipped) in one integration, from the first frame to the last."""
        return self.ngroups * self.nframes + (self.ngroups - 1) * self.groupgap

    def group_start(self, g):
        """0-based index of the first frame averaged into group g."""
        return g * (self.nframes + self.groupgap)

    @property
    def effinttm(self):
        """Effective integration time: from the first to the last group."""
        return (self.ngroups - 1) * self.tgroup

    @property
    def int_duration(self):
        """Clock time of one integration: one reset frame plus every frame read or skipped."""
        return (self.frames_per_int + 1) * self.tframe


def readout(readpatt, ngroups, nints, tframe, detector="NRCBLONG"):
    name = str(readpatt).upper()
    if name not in READ_PATTERNS:
        raise Ramp2SlopeError(f"unknown read pattern {readpatt!r}; choose one of {', '.join(READ_PATTERNS)}")
    if int(ngroups) < 1 or int(nints) < 1:
        raise Ramp2SlopeError("ngroups and nints must be at least 1")
    nframes, groupgap = READ_PATTERNS[name]
    detector = str(detector).upper()
    mode = INSTRUMENT_MODES.get(INSTRUMENT.get(detector))
    patterns = {m.readpatt for m in INSTRUMENT_MODES.values()}
    if (mode.readpatt != name) if mode else (name in patterns):
        wanted = mode.readpatt if mode else "a NIRCam pattern"
        raise Ramp2SlopeError(f"read pattern {name} is not simulated on {detector}: it takes {wanted}")
    return Readout(name, nframes, groupgap, int(ngroups), int(nints), float(tframe))
