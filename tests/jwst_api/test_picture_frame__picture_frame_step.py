"""jwst picture_frame/tests/test_picture_frame_step.py, ported: PictureFrameStep standalone and
in Detector1Pipeline. Every test asks CRDS (for the WCS references of the default science
masking, or for the PICTUREFRAME) and fails on jwst itself offline."""
from ._port import CRDS, port

SKIP = {name: CRDS for name in ("test_output_type", "test_run_in_pipeline", "test_save_mask",
                                "test_save_correction", "test_unsupported_mode")}

globals().update(port("picture_frame/tests/test_picture_frame_step.py", {}, SKIP))
