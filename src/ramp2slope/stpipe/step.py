"""The Step base class: parameters from a spec, run(), reference files, saving with official names.

A step subclass declares ``spec`` (its own parameters, in the official format), ``class_alias``
(its name and output suffix), ``reference_file_types`` and ``process(model)``. ``run()`` opens
the input, calls ``process``, records timing, and saves the result when asked to.
"""
import logging
import os
import shutil
import tempfile
import time
import weakref

from astropy.io import fits

from .. import datamodels
from ..datamodels.reference_models import BY_REFTYPE
from ..datamodels.models import is_guide_star_exposure
from ..errors import BadInputError, IncompatibleModelError, Ramp2SlopeError
from ..runtime.hugepages import no_hugepage_advice
from ..runtime.malloc import retained_heap
from ..references import NOT_APPLICABLE, crds_client, find_reference
from ..runtime import cache_loading, compile_notice, kernel_clock, termination
from .config import ParameterFileSupport
from .naming import make_output_path
from .spec import parse_spec

log = logging.getLogger("ramp2slope")

# Parameters every step has, with the official names and defaults.
COMMON_SPEC = """
    pre_hooks = string_list(default=list())
    post_hooks = string_list(default=list())
    output_file = output_file(default=None)  # File to save output to.
    output_dir = string(default=None)  # Directory path for output files
    output_ext = string(default='.fits')  # Default type of output
    output_use_model = boolean(default=False)  # When saving use `DataModel.meta.filename`
    output_use_index = boolean(default=True)  # Append index.
    save_results = boolean(default=False)  # Force save results
    skip = boolean(default=False)  # Skip this step
    suffix = string(default=None)  # Default suffix for output files
    search_output_file = boolean(default=True)  # Use outputfile define in parent step
    input_dir = string(default=None)  # Input directory
    refdir = string(default=None)  # Directory searched for reference files (ramp2slope)
"""


class ReferenceCache:
    """Reference files resolved and loaded once per pipeline run.

    A pipeline that runs its steps many times on parts of one exposure (one integration at a
    time) installs one as ``_reference_cache``; :meth:`Step.load_reference` then resolves each
    reference once, loads each file once, and the loaded objects live until :meth:`clear`,
    which closes those that hold a file open (the memory-mapped dark).
    """

    def __init__(self):
        self._paths = {}
        self._values = {}

    def path(self, key, resolve):
        """``(path, first)``: the cached resolution for ``key``, and whether it was just made."""
        if key in self._paths:
            return self._paths[key], False
        path = resolve()
        self._paths[key] = path
        return path, True

    def get(self, key, load):
        if key not in self._values:
            self._values[key] = load()
        return self._values[key]

    def holds(self, value):
        return any(value is held for held in self._values.values())

    def clear(self):
        """Close and forget every loaded reference (resolved paths are kept)."""
        self.keep_only(())

    def keep_only(self, reftypes):
        """Close and forget the loaded references of every type not in ``reftypes`` (the
        types the steps still to run will load): a reference leaves memory after its last
        user."""
        dropped = [key for key in self._values if key[0] not in reftypes]
        for key in dropped:
            close = getattr(self._values.pop(key), "close", None)
            if callable(close):
                close()


class Step(ParameterFileSupport):
    """Base class of every processing step.

    Parameter files, CRDS parameter references and ``call``: :mod:`ramp2slope.stpipe.config`.
    """

    spec = ""
    class_alias = None
    reference_file_types = ()
    #: reference types a pipeline checks before it starts (those this step always needs)
    prefetch_types = None
    #: name under meta.cal_step (``dark_current`` records ``dark_sub``)
    cal_step_name = None
    #: True for the steps that process a ramp: another kind of model handed in is converted
    #: to a RampModel, as officially (a raw Level1bModel is refused)
    ramp_input = False
    #: True for the steps that also take raw FGS guide-star data (a GuiderRawModel)
    guider_input = False

    def __init__(self, name=None, parent=None, config_file=None, **kwargs):
        self.name = name or self.class_alias or type(self).__name__
        self.parent = parent
        # As officially, the file is not read here (from_config_file and call read it): it only
        # locates the sub-step files it names.
        object.__setattr__(self, "config_file", os.fspath(config_file) if config_file else None)
        self._params = {p.name: p for p in self.parameters()}
        for param in self._params.values():
            object.__setattr__(self, param.name, param.default if not isinstance(param.default, list)
                               else list(param.default))
        for key, value in kwargs.items():
            setattr(self, key, value)

    # -- parameters -----------------------------------------------------------------------------
    @classmethod
    def parameters(cls):
        """Every parameter: the common ones, the step's own, and one override per reference type."""
        params = parse_spec(COMMON_SPEC) + parse_spec(cls.spec)
        for reftype in cls.reference_file_types:
            params += parse_spec(f"override_{reftype} = string(default=None)  # path to a "
                                 f"{reftype.upper()} reference file, or N/A to skip the step")
        return params

    def __setattr__(self, name, value):
        params = self.__dict__.get("_params")
        if params is not None and name in params and name.startswith("override_") and \
                isinstance(value, datamodels.DataModel):
            pass   # a reference model in memory, used as its file would be
        elif params is not None and name in params:
            value = params[name].convert(value, self.name)
        elif params is not None and not name.startswith("_") and name not in (
                "name", "parent") and not hasattr(type(self), name):
            raise Ramp2SlopeError(f"{self.name} has no parameter {name!r}")
        object.__setattr__(self, name, value)

    def get_pars(self):
        """The current parameter values, as a dict."""
        return {name: getattr(self, name) for name in self._params}

    def __getitem__(self, name):
        """A parameter's value by name: the official pipeline's ``steps`` attribute holds each
        step's parameters as a dict, so code reads ``pipeline.steps["jump"]["skip"]``; here the
        entries are the steps, which answer the same way."""
        if name not in self._params:
            raise KeyError(name)
        return getattr(self, name)

    def search_attr(self, name):
        """A parameter's value here, or else the nearest parent's (like output_dir in stpipe)."""
        step = self
        while step is not None:
            value = getattr(step, name, None)
            if value is not None:
                return value
            step = step.parent
        return None

    # -- running ----------------------------------------------------------------------------------
    def _open_input(self, step_input):
        """The model to process. A model handed in by a user is copied, never modified."""
        if isinstance(step_input, datamodels.DataModel):
            if self.ramp_input and not isinstance(step_input, (datamodels.RampModel,
                                                                datamodels.GuiderRawModel)):
                step_input = self._as_ramp(step_input)
            return step_input if self.parent is not None else step_input.copy()
        if isinstance(step_input, (str, os.PathLike)):
            path = os.fspath(step_input)
            if self.input_dir and not os.path.isabs(path):
                path = os.path.join(self.input_dir, path)
            return datamodels.open(path)
        return step_input

    def _as_ramp(self, model):
        if isinstance(model, datamodels.Level1bModel):
            raise IncompatibleModelError(
                f"{self.name}: Input data model is not compatible. The file should be opened as a "
                f"RampModel before calling the step (datamodels.open does this for an _uncal file)")
        # as officially, a generic model of raw guide-star data becomes a GuiderRawModel
        ramp_type = datamodels.GuiderRawModel if is_guide_star_exposure(model) else datamodels.RampModel
        ramp = ramp_type(model)
        for name, value in model.meta._extra.items():   # metadata with no FITS keyword
            if name not in ramp.meta._extra:
                ramp.meta._extra[name] = value
        return ramp

    def run(self, *args):
        compile_notice.install()   # a kernel compiled on first use is said, not silent
        cache_loading.install()    # a kernel loaded from the cache is only linked
        with no_hugepage_advice(), retained_heap():   # see ramp2slope.runtime.malloc
            return self._run(*args)

    def _run(self, *args):
        termination.check()   # a stop request that arrived where it could not be raised
        step_input = args[0] if args else None
        model = self._open_input(step_input)
        if isinstance(model, datamodels.GuiderRawModel) and not self.guider_input:
            raise BadInputError(f"{self.name}: raw guide-star data ({model.meta.exposure.type}) are "
                                f"processed by calwebb_guider; of detector1's steps only dq_init "
                                f"applies to them")
        start = time.perf_counter()
        if self.skip and self.parent is not None:
            self.record_skip(model)
            log.info("%s skipped", self.name)
            return model
        log.info("%s running", self.name)
        kernels = kernel_clock.seconds()
        result = self.process(model, *args[1:])
        self.log_done(time.perf_counter() - start, result, kernel_clock.seconds() - kernels)
        if self.should_save() and result is not None:
            self.save_model(result, input_name=self.input_name(step_input, model))
        return result

    def process(self, model):
        raise NotImplementedError

    def log_done(self, elapsed, result, kernel_s=0.0):
        """The step's closing line: its time, its status, and the part of the time that went to
        loading numba kernels on their first call in the process (start-up, not the step's
        work: see :mod:`ramp2slope.runtime.kernel_clock`)."""
        status = self.status_of(result)
        notes = [status.lower()] if status else []
        if kernel_s >= 0.0005:
            notes.append(f"kernels loaded in {kernel_s:.3f} s")
        # milliseconds: many steps take less than 0.1 s, and the benchmark's thread scaling
        # is judged on these figures
        log.info("%s done in %.3f s%s", self.name, elapsed, f" ({'; '.join(notes)})" if notes else "")

    def status_of(self, result):
        model = result[0] if isinstance(result, (tuple, list)) and result else result
        if self.cal_step_name and isinstance(model, datamodels.DataModel):
            return getattr(model.meta.cal_step, self.cal_step_name)
        return None

    def record_status(self, model, status):
        if self.cal_step_name and isinstance(model, datamodels.DataModel):
            setattr(model.meta.cal_step, self.cal_step_name, status)

    def record_skip(self, model):
        """What a step turned off with ``skip`` leaves in the model: stpipe records SKIPPED under
        the step's alias, which is its S_* status only where the two names agree (dark_current's
        status is ``dark_sub``: a skipped dark_current leaves S_DARK unset in jwst)."""
        if self.class_alias == self.cal_step_name:
            self.record_status(model, "SKIPPED")

    def complete(self, model):
        """Mark ``model`` as processed by this step and return it."""
        self.record_status(model, "COMPLETE")
        return model

    # -- a step's intermediate products (mask, background, correction...) -----------------------
    def intermediate_path(self, model, suffix):
        """Where the intermediate product ``suffix`` of ``model`` is written (its name with the
        suffix, in the output folder)."""
        from .naming import make_output_path

        base = model._path or model.meta.filename
        return make_output_path(base, output_dir=self.search_attr("output_dir"), suffix=suffix)

    def keep_intermediates(self):
        """From now on the intermediate products are kept in the dict returned (by suffix)
        instead of written: for the function-level entry points (jwst's ``do_correction``,
        ``correct_picture_frame``), which return them."""
        self._kept = {}
        return self._kept

    def process_as_function(self, model):
        """:meth:`process` as the function-level entries (jwst's ``do_correction``,
        ``correct_picture_frame``) run it: ``(output, status, intermediates)``, the step's
        status returned rather than left in the model, the intermediate products kept (by
        suffix) rather than written."""
        kept = self.keep_intermediates()
        before = getattr(model.meta.cal_step, self.cal_step_name)
        output = self.process(model)
        status = getattr(output.meta.cal_step, self.cal_step_name)
        setattr(output.meta.cal_step, self.cal_step_name, before)
        return output, status, kept

    def save_intermediate(self, out, model, suffix):
        """Write the intermediate product ``out`` of ``model`` (or keep it, see
        :meth:`keep_intermediates`)."""
        kept = getattr(self, "_kept", None)
        if kept is not None:
            kept[suffix] = out
            return
        path = self.intermediate_path(model, suffix)
        out.save(path)
        log.info("%s: saved %s", self.name, path)

    def skipped(self, model, reason):
        """Mark ``model`` as not processed by this step (saying why in the log) and return it."""
        log.info("%s skipped: %s", self.name, reason)
        self.record_status(model, "SKIPPED")
        return model

    def reference_or_skip(self, model, reftype):
        """The reference path, or None when it is "N/A" (the caller then skips the step)."""
        path = self.get_reference_file(model, reftype)
        return None if path == NOT_APPLICABLE else path

    # -- reference files --------------------------------------------------------------------------
    def wanted_references(self, model):
        """The reference types this step will need for ``model``: a pipeline finds and checks
        them before any step runs (and a step may refuse settings it cannot honour on this
        exposure here, so that nothing runs for nothing)."""
        return self.reference_file_types if self.prefetch_types is None else self.prefetch_types

    def resolve_reference(self, model, reftype, use_crds=True):
        """The reference path (or "N/A") this step would use, without recording or logging it
        (None with ``use_crds=False`` when only CRDS would have it)."""
        override = getattr(self, f"override_{reftype}", None)
        if isinstance(override, datamodels.DataModel):
            override = self._override_file(reftype, override)
        return find_reference(reftype, model, override, self.search_attr("refdir"), use_crds=use_crds)

    def _override_file(self, reftype, ref_model):
        """The file standing for a reference model given in memory as ``override_<reftype>``.

        The model is written once (per step and model) to a private temporary folder that
        goes when the step does, so that it is checked, cut out and read exactly as the
        file it would have been saved as.
        """
        files = self.__dict__.get("_override_files")
        if files is None:
            folder = tempfile.mkdtemp(prefix="ramp2slope-override-")
            files = {"folder": folder}
            object.__setattr__(self, "_override_files", files)
            weakref.finalize(self, shutil.rmtree, folder, ignore_errors=True)
        key = (reftype, id(ref_model))
        entry = files.get(key)
        if entry is None or entry[0] is not ref_model:
            expected = BY_REFTYPE.get(reftype)
            if expected is not None and not isinstance(ref_model, expected):
                names = " or ".join(cls.__name__ for cls in expected)
                raise Ramp2SlopeError(f"{self.name}.override_{reftype}: a {type(ref_model).__name__} "
                                      f"was given, a {names} is needed")
            path = os.path.join(files["folder"], f"{reftype}_{len(files)}.fits")
            datamodels.write_model(ref_model.with_own_headers(), path)
            if expected is not None:
                # the class says what the reference is, whatever its REFTYPE says (as officially)
                fits.setval(path, "REFTYPE", value=reftype.upper())
            entry = files[key] = (ref_model, path)
        return entry[1]

    def get_reference_file(self, model, reftype):
        """The path of the reference file to use, or "N/A"; records it in ``R_<reftype>``."""
        cache = self.reference_cache()
        if cache is None:
            path, first = self.resolve_reference(model, reftype), True
        else:
            path, first = cache.path((self.name, reftype),
                                     lambda: self.resolve_reference(model, reftype))
        ref_node = getattr(model.meta.ref_file, reftype)
        override = getattr(self, f"override_{reftype}", None)
        # a file named as an override keeps its path, wherever it lies (as in jwst)
        from_crds = not override and crds_client.is_crds_path(path)
        in_memory = isinstance(override, datamodels.DataModel) and path != NOT_APPLICABLE
        if ref_node is not None:
            ref_node.name = (override.override_handle if in_memory
                             else crds_client.crds_uri(path) if from_crds else path)
        if from_crds:   # as jwst records the context its CRDS references came from
            model.meta.ref_file.crds.context_used = crds_client.context_used()
            model.meta.ref_file.crds.sw_version = crds_client.crds_version()
        if path != NOT_APPLICABLE and first:
            log.info("%s: Using %s reference file %s", self.name, reftype.upper(),
                     override.override_handle if in_memory else os.path.basename(path))
        return path

    def reference_cache(self):
        """The run-wide :class:`ReferenceCache` of this step's pipeline, or None."""
        step = self
        while step is not None:
            cache = step.__dict__.get("_reference_cache")
            if cache is not None:
                return cache
            step = step.parent
        return None

    def load_reference(self, model, reftype, loader, key=(), required=False):
        """``loader(path, model)`` for this step's ``reftype`` reference; None when it is "N/A"
        (unless ``required``: the loader is then given "N/A" and says why it cannot be).

        The path is recorded in ``R_<reftype>`` as :meth:`get_reference_file` does. Inside a
        pipeline run with a reference cache the object is loaded once per run (per file, loader,
        science window and ``key``) and shared, also between steps (jump and ramp_fit load the
        same GAIN and READNOISE): it must not be modified. Give it back with
        :meth:`release_reference` instead of closing it.
        """
        path = self.get_reference_file(model, reftype)
        if path == NOT_APPLICABLE:
            return loader(path, model) if required else None
        cache = self.reference_cache()
        if cache is None:
            return loader(path, model)
        sub = model.meta.subarray
        window = (tuple(model.shape[-2:]), sub.xstart, sub.ystart, sub.xsize, sub.ysize)
        return cache.get((reftype, path, loader, window) + tuple(key), lambda: loader(path, model))

    def release_reference(self, reference):
        """Close a reference from :meth:`load_reference`, unless the run-wide cache keeps it."""
        cache = self.reference_cache()
        if cache is not None and cache.holds(reference):
            return
        close = getattr(reference, "close", None)
        if callable(close):
            close()

    # -- saving ----------------------------------------------------------------------------------
    def should_save(self):
        return bool(self.save_results or self.output_file)

    def input_name(self, step_input, model):
        if isinstance(step_input, (str, os.PathLike)):
            return os.fspath(step_input)
        first = model[0] if isinstance(model, (tuple, list)) and model else model
        if isinstance(first, datamodels.DataModel):
            return first._path or first.meta.filename
        return None

    def output_path(self, input_name, suffix=None, index=None):
        output_file = self.output_file
        if output_file is None and self.search_output_file:
            parent = self.parent
            while parent is not None and output_file is None:
                output_file = parent.output_file
                parent = parent.parent
        return make_output_path(
            input_name=input_name, output_file=output_file, output_dir=self.search_attr("output_dir"),
            suffix=suffix or self.suffix or self.class_alias, index=index, ext=self.output_ext)

    def save_model(self, result, input_name=None, suffix=None, force=False):
        """Save ``result`` (a model, or a tuple of models numbered _0_, _1_, ...)."""
        if isinstance(result, (tuple, list)):
            paths = []
            for index, model in enumerate(result):
                if model is not None:
                    paths.append(self._save_one(model, input_name, suffix, index))
            return paths
        return self._save_one(result, input_name, suffix, None)

    def _save_one(self, model, input_name, suffix, index):
        path = self.output_path(input_name or model._path or model.meta.filename, suffix, index)
        model.save(path)
        log.info("%s: saved %s", self.name, path)
        return path
