"""Which FITS keyword backs which ``meta`` attribute.

Only the keywords that detector1 reads or writes are mapped; every other header keyword is kept
verbatim in the header and written back out, so nothing is lost when a file passes through.
The attribute paths and keyword names are those of the official JWST data models, so that code
written for ``stdatamodels`` finds the same values at the same places.
"""

# meta path -> (HDU name, keyword)
_PRIMARY = {
    "date": "DATE",
    "filename": "FILENAME",
    "model_type": "DATAMODL",
    "telescope": "TELESCOP",
    "origin": "ORIGIN",
    "calibration_software_version": "CAL_VER",
    "calibration_software_revision": "CAL_VCS",
    "reftype": "REFTYPE",
    "author": "AUTHOR",
    "description": "DESCRIP",
    "pedigree": "PEDIGREE",
    "useafter": "USEAFTER",
    "visit.tsovisit": "TSOVISIT",
    "instrument.name": "INSTRUME",
    "instrument.detector": "DETECTOR",
    "instrument.module": "MODULE",
    "instrument.channel": "CHANNEL",
    "instrument.filter": "FILTER",
    "instrument.pupil": "PUPIL",
    "instrument.pupil_position": "PWCPOS",
    "instrument.grating": "GRATING",
    "instrument.lamp_mode": "LAMPMODE",
    "observation.date": "DATE-OBS",
    "observation.time": "TIME-OBS",
    "observation.program_number": "PROGRAM",
    "observation.observation_number": "OBSERVTN",
    "observation.visit_number": "VISIT",
    "observation.exposure_number": "EXPOSURE",
    "exposure.type": "EXP_TYPE",
    "exposure.start_time": "EXPSTART",
    "exposure.mid_time": "EXPMID",
    "exposure.end_time": "EXPEND",
    "exposure.readpatt": "READPATT",
    "exposure.noutputs": "NOUTPUTS",
    "exposure.nints": "NINTS",
    "exposure.integration_start": "INTSTART",
    "exposure.integration_end": "INTEND",
    "exposure.ngroups": "NGROUPS",
    "exposure.nframes": "NFRAMES",
    "exposure.frame_divisor": "FRMDIVSR",
    "exposure.groupgap": "GROUPGAP",
    "exposure.nsamples": "NSAMPLES",
    "exposure.drop_frames1": "DRPFRMS1",
    "exposure.drop_frames3": "DRPFRMS3",
    "exposure.frame_time": "TFRAME",
    "exposure.group_time": "TGROUP",
    "exposure.integration_time": "EFFINTTM",
    "exposure.exposure_time": "EFFEXPTM",
    "exposure.zero_frame": "ZEROFRAM",
    "exposure.nrs_normal": "NRS_NORM",
    "exposure.nrs_reference": "NRS_REF",
    "exposure.gain_factor": "GAINFACT",
    # what MIRI's rscd step records (groups flagged, and pixels kept for saturation or brightness)
    "rscd.ngroups_skip_int1": "INT1SKIP",
    "rscd.ngroups_skip_int2p": "INT2SKIP",
    "rscd.keep_bright_firstgroup_int1": "INT1UGP1",
    "rscd.keep_bright_firstgroup_int2p": "INT2UGP1",
    "rscd.keep_groups_saturation_int1": "INT1BORS",
    "rscd.keep_groups_saturation_int2p": "INT2BORS",
    "exposure.primary_cosmic_rays": "PRIMECRS",
    "exposure.extended_emission_events": "EXTNCRS",
    "subarray.name": "SUBARRAY",
    "subarray.xstart": "SUBSTRT1",
    "subarray.ystart": "SUBSTRT2",
    "subarray.xsize": "SUBSIZE1",
    "subarray.ysize": "SUBSIZE2",
    "subarray.fastaxis": "FASTAXIS",
    "subarray.slowaxis": "SLOWAXIS",
    "subarray.multistripe_reads1": "MSTR_RD1",
    "subarray.multistripe_skips1": "MSTR_SK1",
    "subarray.multistripe_reads2": "MSTR_RD2",
    "subarray.multistripe_skips2": "MSTR_SK2",
    "subarray.repeat_stripe": "MSTR_RPT",
    "subarray.interleave_reads1": "MSTR_ILV",
    "subarray.superstripe_step": "SSTR_STP",
    "subarray.num_superstripe": "SSTR_NST",
    "ref_file.crds.sw_version": "CRDS_VER",
    "ref_file.crds.context_used": "CRDS_CTX",
}

#: Step status keywords (``meta.cal_step.<name>``), values 'COMPLETE', 'SKIPPED' or 'FAILED'.
CAL_STEP_KEYWORDS = {
    "group_scale": "S_GRPSCL",
    "dq_init": "S_DQINIT",
    "emicorr": "S_MIREMI",
    "saturation": "S_SATURA",
    "ipc": "S_IPC",
    "firstframe": "S_FRSTFR",
    "lastframe": "S_LASTFR",
    "reset": "S_RESET",
    "superbias": "S_SUPERB",
    "refpix": "S_REFPIX",
    "rscd": "S_RSCD",
    "linearity": "S_LINEAR",
    "dark_sub": "S_DARK",
    "charge_migration": "S_CHGMIG",
    "jump": "S_JUMP",
    "picture_frame": "S_PCTFRM",
    "clean_flicker_noise": "S_CLNFNS",
    "persistence": "S_PERSIS",
    "ramp_fit": "S_RAMP",
    "gain_scale": "S_GANSCL",
}

#: Reference-file keywords (``meta.ref_file.<reftype>.name``).
REF_FILE_KEYWORDS = {
    "mask": "R_MASK",
    "saturation": "R_SATURA",
    "superbias": "R_SUPERB",
    "ipc": "R_IPC",
    "refpix": "R_REFPIX",
    "sirskernel": "R_SIRSKL",
    "linearity": "R_LINEAR",
    "dark": "R_DARK",
    "gain": "R_GAIN",
    "readnoise": "R_READNO",
    "trapdensity": "R_TRPDEN",
    "trappars": "R_TRPPAR",
    "persat": "R_PERSAT",
    "pictureframe": "R_PCTFRM",
    "emicorr": "R_MIREMI",
    "reset": "R_RESET",
    "rscd": "R_RSCD",
    "flat": "R_FLAT",
    "pastasoss": "R_PSTSOS",
}

KEYWORDS = {path: ("PRIMARY", kw) for path, kw in _PRIMARY.items()}
KEYWORDS.update({f"cal_step.{name}": ("PRIMARY", kw) for name, kw in CAL_STEP_KEYWORDS.items()})
KEYWORDS.update({f"ref_file.{name}.name": ("PRIMARY", kw) for name, kw in REF_FILE_KEYWORDS.items()})
KEYWORDS["bunit_data"] = ("SCI", "BUNIT")
KEYWORDS["bunit_err"] = ("ERR", "BUNIT")
# the planned source position of an imaging time series (clean_flicker_noise's median_image)
KEYWORDS["wcsinfo.siaf_xref_sci"] = ("SCI", "XREF_SCI")
KEYWORDS["wcsinfo.siaf_yref_sci"] = ("SCI", "YREF_SCI")

#: Metadata of the official tree that has no FITS keyword: it lives in a product's ASDF
#: extension (``meta.exposure.read_times``: the explicit read times jwst gives a collated
#: superstripe ramp whose stripes repeat within a frame).
TREE_ONLY = {"exposure.read_times"}

#: Every prefix of a mapped path, so that ``meta.exposure`` is a node and not a missing leaf.
PREFIXES = {".".join(path.split(".")[:i]) for path in (*KEYWORDS, *TREE_ONLY)
            for i in range(1, path.count(".") + 1)}
