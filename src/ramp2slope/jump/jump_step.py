"""JumpStep: flag cosmic-ray jumps (two-point differences, neighbours, snowballs, showers)."""
import logging

from ..references import load_gain, load_readnoise
from ..stpipe import Step
from .detect import STEP_DEFAULTS, detect_jumps, detect_jumps_in_blocks, effective_minimum_groups

__all__ = ["JumpStep"]

log = logging.getLogger("ramp2slope")


class JumpStep(Step):
    """Detect jumps in the ramps and flag them JUMP_DET in GROUPDQ."""

    class_alias = "jump"
    ramp_input = True
    cal_step_name = "jump"
    reference_file_types = ("gain", "readnoise")
    spec = """
        rejection_threshold = float(default=4.0,min=0)  # CR sigma rejection threshold
        three_group_rejection_threshold = float(default=6.0,min=0)  # CR sigma rejection threshold
        four_group_rejection_threshold = float(default=5.0,min=0)  # CR sigma rejection threshold
        maximum_cores = string(default='1')  # cores for multiprocessing. Can be an integer, 'half', 'quarter', or 'all'
        flag_4_neighbors = boolean(default=True)  # flag the four perpendicular neighbors of each CR
        max_jump_to_flag_neighbors = float(default=1000)  # maximum jump sigma that will trigger neighbor flagging
        min_jump_to_flag_neighbors = float(default=10)  # minimum jump sigma that will trigger neighbor flagging
        after_jump_flag_dn1 = float(default=0)  # 1st flag groups after jump above DN threshold
        after_jump_flag_time1 = float(default=0)  # 1st flag groups after jump groups within specified time
        after_jump_flag_dn2 = float(default=0)  # 2nd flag groups after jump above DN threshold
        after_jump_flag_time2 = float(default=0)  # 2nd flag groups after jump groups within specified time
        expand_large_events = boolean(default=False)  # Turns on Snowball detector for NIR detectors
        min_sat_area = float(default=1.0)  # minimum required area for the central saturation of snowballs
        min_jump_area = float(default=5.0)  # minimum area to trigger large events processing
        expand_factor = float(default=2.0)  # The expansion factor for the enclosing circles or ellipses
        use_ellipses = boolean(default=False)  # deprecated
        sat_required_snowball = boolean(default=True)  # Require the center of snowballs to be saturated
        min_sat_radius_extend = float(default=2.5)  # The min radius of the sat core to trigger the extension of the core
        sat_expand = integer(default=2)  # Number of pixels to add to the radius of the saturated core of snowballs
        edge_size = integer(default=25)  # Distance from detector edge where a saturated core is not required for snowball detection
        mask_snowball_core_next_int = boolean(default=True)  # Flag saturated cores of snowballs in the next integration?
        snowball_time_masked_next_int = integer(default=4000)  # Time in seconds over which saturated cores are flagged in next integration
        find_showers = boolean(default=False)  # Apply MIRI shower flagging?
        max_shower_amplitude = float(default=4)  # Maximum MIRI shower amplitude in DN/s (unused by jwst 3.0.0, which applies 6 DN/group)
        extend_snr_threshold = float(default=1.2)  # The SNR minimum for detection of extended showers in MIRI
        extend_min_area = integer(default=90)  # Min area of emission after convolution for the detection of showers
        extend_inner_radius = float(default=1)  # Inner radius of the ring_2D_kernel used for convolution
        extend_outer_radius = float(default=2.6)  # Outer radius of the ring_2D_Kernel used for convolution
        extend_ellipse_expand_ratio = float(default=1.1)  # Expand the radius of the ellipse fit to the extended emission
        time_masked_after_shower = float(default=15)  # Seconds to flag as jump after a detected extended emission
        min_diffs_single_pass = integer(default=10)  # The minimum number of differences needed to skip the iterative flagging of jumps.
        max_extended_radius = integer(default=200)  # The maximum radius of an extended snowball or shower
        minimum_groups = integer(default=3)  # The minimum number of groups to perform jump detection using sigma clipping
        minimum_sigclip_groups = integer(default=100)  # The minimum number of groups to switch to sigma clipping
        only_use_ints = boolean(default=True)  # In sigclip only compare the same group across ints, if False compare all groups
    """

    def process(self, model):
        return self._detect(model, lambda gain, readnoise, **params: detect_jumps(
            model.data, model.groupdq, model.pixeldq, gain, readnoise, **params))

    def process_in_blocks(self, model, store, dnu_table, block_rows, on_rows=None):
        """``process`` for an exposure held by ``store`` (see ``detect_jumps_in_blocks``, which
        also says what ``on_rows`` is given).

        ``model`` carries the metadata and PIXELDQ (its data may be a stand-in of the
        exposure's shape); ``dnu_table`` is the table of all-DO_NOT_USE groups of the GROUPDQ.
        """
        return self._detect(model, lambda gain, readnoise, **params: detect_jumps_in_blocks(
            store, model.pixeldq, gain, readnoise, dnu_table=dnu_table, block_rows=block_rows,
            on_rows=on_rows, **params))

    def _detect(self, model, detector):
        if model.shape[1] <= 2:
            return self.skipped(model, "fewer than 3 groups")
        gain = self.load_reference(model, "gain", load_gain, required=True)
        readnoise = self.load_reference(model, "readnoise", load_readnoise, required=True)
        params = {name: getattr(self, name) for name in STEP_DEFAULTS if name != "maximum_cores"}
        # The official step runs in one process by default and then always applies 3.
        params["minimum_groups"] = effective_minimum_groups(self.maximum_cores, self.minimum_groups,
                                                            model.shape[-2])
        exposure = model.meta.exposure
        if exposure.read_times:
            # jwst 3.0.0 hands them to stcal's jump, whose group differences do not use them:
            # the differences stay per group there, and so here
            log.info("%s: Using explicit read times as jwst 3.0.0 does (its two-point "
                     "differences remain per group)", self.name)
        result = detector(gain.data, readnoise.data, nframes=exposure.nframes or 1,
                          group_time=exposure.group_time, **params)
        if result.skipped:
            return self.skipped(model, "fewer than 3 groups")
        exposure.primary_cosmic_rays = result.primecrs
        exposure.extended_emission_events = result.extncrs
        if result.mode == "none":
            # stcal's count is then -99, which goes into PRIMECRS as jwst writes it
            log.info("%s: no jump detection: too few usable groups for any mode "
                     "(minimum_groups %d, minimum_sigclip_groups %d); no jumps flagged, "
                     "%d snowballs, %d showers", self.name, params["minimum_groups"],
                     params["minimum_sigclip_groups"], result.number_snowballs,
                     result.number_showers)
        else:
            log.info("%s: %s mode, %d primary jumps, %d snowballs, %d showers", self.name,
                     result.mode, result.number_primary_crs, result.number_snowballs,
                     result.number_showers)
        return self.complete(model)
