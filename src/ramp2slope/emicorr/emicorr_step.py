"""EmiCorrStep: remove MIRI electromagnetic interference from the ramps (off by default)."""
import datetime
import logging
import os
import shutil
import tempfile
import warnings
import weakref

import numpy as np

from ..datamodels import EmiModel
from ..errors import BadInputError
from ..references.finder import find_reference
from ..stpipe import Step
from . import emicorr as _emicorr_module
from .emicorr import ALLOWED_READPATTS, Clocks, EmiCorrection, onthefly_clocks
from .reference import load_emicorr, write_emicorr

__all__ = ["EmiCorrStep", "plan_emicorr"]

log = logging.getLogger("ramp2slope")


def _nsamples(model):
    """NSAMPLES (clock ticks per pixel read); read from the header if meta does not map it."""
    value = model.meta.exposure.nsamples
    if value is None:
        value = model.primary_header.get("NSAMPLES")
    if value is None:
        raise BadInputError("emicorr: the exposure has no NSAMPLES keyword (pixel clock samples "
                            "per read), which the EMI phase needs")
    return int(value)


def plan_emicorr(model, reference, algorithm="joint", onthefly_corr_freq=None):
    """What to correct: ``(clocks, frequencies, algorithm)``, or ``(None, reason, None)`` where
    the official step skips (with its warning logged).

    ``reference`` is an :class:`~ramp2slope.emicorr.reference.EmiReference` or None (frequencies
    given on the fly, which forces the sequential algorithm). Only headers and the data shape
    are used, so a streaming pipeline can call it on its template model.
    """
    meta = model.meta
    subarray, readpatt = meta.subarray.name, meta.exposure.readpatt
    detector = meta.instrument.detector
    ngroups = model.shape[1]
    if onthefly_corr_freq is not None:
        reference = None
    if ngroups < 3:
        log.warning("emicorr: EMI correction cannot be performed for ngroups=%d", ngroups)
        return None, f"ngroups={ngroups}", None
    if ngroups < 10 and algorithm == "sequential":
        log.warning("emicorr: the 'sequential' algorithm is selected and ngroups=%d; the 'joint' "
                    "algorithm is recommended for ngroups < 10", ngroups)
    if algorithm == "joint" and reference is None:
        log.warning("emicorr: the 'joint' algorithm cannot be used without an EMICORR reference "
                    "file; using the 'sequential' algorithm")
        algorithm = "sequential"
    frequencies = []
    rowclocks = frameclocks = None
    if reference is not None:
        _, rowclocks, frameclocks, names = reference.case(subarray, readpatt, detector)
        log.info("emicorr: subarray=%s, read pattern=%s, detector=%s", subarray, readpatt, detector)
        for name in names or ():
            freq, wave = reference.frequency(name)
            frequencies.append((name, freq, wave))
    else:
        clocks = onthefly_clocks(subarray, readpatt)
        if clocks is not None:
            rowclocks, frameclocks = clocks
            frequencies = [(repr(freq), freq, None) for freq in onthefly_corr_freq]
    if rowclocks is None or not frequencies:
        log.warning("emicorr: No correction match for this configuration")
        return None, "no correction match for this configuration", None
    log.info("emicorr: will correct %d frequencies: %s", len(frequencies),
             [name for name, _, _ in frequencies])
    clocks = Clocks(_nsamples(model), rowclocks, frameclocks, readpatt, meta.subarray.xsize,
                    meta.subarray.xstart)
    return clocks, frequencies, algorithm


class EmiCorrStep(Step):
    """Fit and subtract the EMI waveforms of the MIRI reference (or of frequencies given)."""

    class_alias = "emicorr"
    ramp_input = True
    cal_step_name = "emicorr"
    reference_file_types = ("emicorr",)
    spec = """
        algorithm = option('sequential', 'joint', default='joint')  # EMI fitting algorithm
        nints_to_phase = integer(default=None)  # Number of integrations to phase
        nbins = integer(default=None)  # Number of bins in one phased wave
        scale_reference = boolean(default=True)  # If True, the reference wavelength will be scaled to the data's phase amplitude
        onthefly_corr_freq = float_list(default=None)  # Frequencies to use for correction
        use_n_cycles = integer(default=3)  # Use N cycles to calculate the phase, to use all integrations set to None
        fit_ints_separately = boolean(default=False)  # If True and algorithm is 'joint', each integration is separately fit.
        user_supplied_reffile = string(default=None)  # Deprecated; use 'override_emicorr' instead
        save_intermediate_results = boolean(default=False)  # If True and a reference file is created on the fly, save it to disk
        skip = boolean(default=True)  # Skip the step
    """

    def __setattr__(self, name, value):
        # the EMICORR reference is an ASDF EmiModel, not one of the FITS DataModels the base
        # class takes in memory: it is kept as given and stands for its file (see below)
        if name == "override_emicorr" and isinstance(value, EmiModel):
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def resolve_reference(self, model, reftype, use_crds=True):
        override = getattr(self, f"override_{reftype}", None)
        if reftype == "emicorr" and isinstance(override, EmiModel):
            return find_reference(reftype, model, self._emi_override_file(override),
                                  self.search_attr("refdir"), use_crds=use_crds)
        return super().resolve_reference(model, reftype, use_crds=use_crds)

    def _emi_override_file(self, emi_model):
        """The ASDF file an EmiModel given in memory is saved to (once per step and model, in
        a private folder that goes with the step), so that it is read as its file would be."""
        files = self.__dict__.get("_emi_override_files")
        if files is None:
            folder = tempfile.mkdtemp(prefix="ramp2slope-override-")
            files = {"folder": folder}
            object.__setattr__(self, "_emi_override_files", files)
            weakref.finalize(self, shutil.rmtree, folder, ignore_errors=True)
        entry = files.get(id(emi_model))
        if entry is None or entry[0] is not emi_model:
            path = os.path.join(files["folder"], f"emicorr_{len(files)}.asdf")
            EmiModel(emi_model.copy().instance).save(path)
            entry = files[id(emi_model)] = (emi_model, path)
        return entry[1]

    def get_reference_file(self, model, reftype):
        path = super().get_reference_file(model, reftype)
        override = getattr(self, f"override_{reftype}", None)
        if isinstance(override, EmiModel) and path != "N/A":
            # recorded as jwst records a reference model given in memory
            getattr(model.meta.ref_file, reftype).name = override.override_handle
        return path

    def wanted_references(self, model):
        # frequencies given on the fly replace the reference, which is then never looked up
        if self.onthefly_corr_freq is not None or self.user_supplied_reffile is not None:
            return ()
        return self.reference_file_types

    def skip_reason(self, model):
        """Why the official step skips this exposure before looking at a reference, or None."""
        instrument = model.meta.instrument.name
        if instrument != "MIRI":
            return f"EMI correction not implemented for instrument: {instrument}"
        readpatt = model.meta.exposure.readpatt
        if str(readpatt).upper() not in ALLOWED_READPATTS:
            return f"EMI correction not implemented for read pattern: {readpatt}"
        return None

    def load(self, model):
        """The EmiReference to use, None for frequencies given on the fly, or "N/A"."""
        if self.onthefly_corr_freq is not None:
            log.info("%s: correcting with a reference made on the fly", self.name)
            return None
        if self.user_supplied_reffile is not None:
            msg = ("The 'user_supplied_reffile' parameter is deprecated and will be removed in a "
                   "future release. Use 'override_emicorr' instead.")
            warnings.warn(msg, DeprecationWarning, stacklevel=3)
            log.warning(msg)
            log.info("Using EMICORR reference file: %s", self.user_supplied_reffile)
            return load_emicorr(self.user_supplied_reffile)
        path = self.reference_or_skip(model, "emicorr")
        if path is None:
            return "N/A"
        override = self.override_emicorr
        log.info("Using EMICORR reference file: %s",
                 override.override_handle if isinstance(override, EmiModel) else path)
        return load_emicorr(path)

    #: Set by :meth:`prepare_streamed` for a pipeline that streams the exposure: the fitted
    #: EmiCorrection (each integration's model is then corrected with it), or why jwst skips.
    _streamed = None
    #: ... and whether the reference was looked up there (then recorded again on each model).
    _streamed_lookup = False

    def prepare_streamed(self, source, before):
        """Fit the EMI of an exposure read one integration at a time from ``source`` (a
        RampSource) before the pipeline streams it: each integration is taken through
        ``before`` (the steps that run before emicorr) and fed to the fitting passes. Until
        :meth:`end_streamed`, :meth:`process` applies the fit to one-integration models."""
        template = source.template
        reason = self.skip_reason(template)
        if reason is not None:
            log.warning("%s: %s", self.name, reason)
            self._streamed = reason
            return
        # The look-up records R_MIREMI (and a CRDS context) in the template, whose headers every
        # integration's model copies: it would then be in the products of the steps before
        # emicorr, and in another place among the cards than in the whole-exposure run. The
        # template is put back, and process() records the reference when it runs, as there.
        headers = {name: header.copy() for name, header in template._headers.items()}
        tree = dict(template._tree)
        node = template.meta.ref_file.emicorr
        name_before = None if node is None else node.name
        reference = self.load(template)
        self._streamed_lookup = node is not None and node.name != name_before
        template._headers.clear()
        template._headers.update(headers)
        template._tree.clear()
        template._tree.update(tree)
        if isinstance(reference, str):
            log.warning("%s: No reference file found; EMICORR step will be skipped", self.name)
            self._streamed = "no EMICORR reference"
            return
        clocks, frequencies, algorithm = plan_emicorr(template, reference, self.algorithm,
                                                      self.onthefly_corr_freq)
        if clocks is None:
            log.warning("%s: step skipped", self.name)
            self._streamed = frequencies
            return
        steps = [step for step in before if not step.skip]
        quiet = logging.getLogger("ramp2slope")
        level = quiet.level
        quiet.setLevel(logging.WARNING)   # the steps say what they do when they run for real

        def raw(i):
            model = source.integration_model(i)
            model._integration_offset = i
            for step in steps:
                model = step.process(model)
            return model
        try:
            first = raw(0)
            corr = EmiCorrection(source.shape, first.pixeldq, clocks, frequencies,
                                 algorithm=algorithm, nints_to_phase=self.nints_to_phase,
                                 nbins=self.nbins, scale_reference=self.scale_reference,
                                 use_n_cycles=self.use_n_cycles,
                                 fit_ints_separately=self.fit_ints_separately)
            passes = 0
            while corr.needs_pass():
                for i in corr.pass_integrations():
                    model = first if i == 0 else raw(i)
                    corr.feed(i, np.asarray(model.data[0], dtype=np.float32))
                corr.end_pass()
                passes += 1
        finally:
            quiet.setLevel(level)
        log.info("%s: EMI fit with algorithm = '%s' over %d integrations (%d passes)", self.name,
                 algorithm, source.nints, passes)
        if self.save_intermediate_results and reference is None:
            self.save_onthefly_reference(template, corr, clocks)
        self._streamed = corr

    def end_streamed(self):
        self._streamed = None
        self._streamed_lookup = False

    def process(self, model):
        if self._streamed is not None:
            if self._streamed_lookup:
                self.get_reference_file(model, "emicorr")   # found once, recorded as it runs
            if isinstance(self._streamed, str):
                return self.skipped(model, self._streamed)
            if model.data.dtype != np.float32:
                model.data = model.data.astype(np.float32)
            offset = getattr(model, "_integration_offset", 0)
            for j in range(model.shape[0]):
                self._streamed.apply(offset + j, model.data[j])
            return self.complete(model)
        reason = self.skip_reason(model)
        if reason is not None:
            log.warning("%s: %s", self.name, reason)
            return self.skipped(model, reason)
        reference = self.load(model)
        if isinstance(reference, str):
            log.warning("%s: No reference file found; EMICORR step will be skipped", self.name)
            return self.skipped(model, "no EMICORR reference")
        save_path = None
        if self.save_intermediate_results and reference is None:
            save_path = self.onthefly_reference_path(model)
        # a ramp held whole is corrected by the module's apply_emicorr, looked up when called
        # as jwst's step does (code written for jwst may replace it there)
        corrected = _emicorr_module.apply_emicorr(
            model, reference, save_onthefly_reffile=save_path, algorithm=self.algorithm,
            nints_to_phase=self.nints_to_phase, nbins=self.nbins,
            scale_reference=self.scale_reference, onthefly_corr_freq=self.onthefly_corr_freq,
            use_n_cycles=self.use_n_cycles, fit_ints_separately=self.fit_ints_separately)
        if corrected is None:
            log.warning("%s: Step skipped", self.name)
            return self.skipped(model, "no correction could be made (the reason is above)")
        return self.complete(corrected)

    def onthefly_reference_path(self, model):
        """Where the on-the-fly EMICORR file goes (``_emi_ref_waves.asdf``)."""
        path = self.output_path(self.input_name(None, model), suffix="emi_ref_waves")
        return path[:-len(".fits")] + ".asdf" if path.endswith(".fits") else path

    def save_onthefly_reference(self, model, corr, clocks):
        """Write the binned waveforms as an EMICORR file (``_emi_ref_waves.asdf``)."""
        meta = model.meta
        names = list(corr.phase_amplitudes)
        readpatt = meta.exposure.readpatt
        freqs = {readpatt: names} if "FAST" in readpatt else {readpatt: {meta.instrument.detector: names}}
        cases = {meta.subarray.name: {"rowclocks": clocks.rowclocks,
                                      "frameclocks": clocks.frameclocks, "freqs": freqs}}
        path = self.onthefly_reference_path(model)
        useafter = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
        write_emicorr(path, corr.phase_amplitudes, cases, useafter)
        log.info("%s: wrote the on-the-fly reference %s", self.name, path)
        return path
