"""JWST data-quality flag tables (pixel flags are 32-bit, group flags are 8-bit).

Values are powers of two; ``pixel[name]`` and ``group[name]`` give the bit value, so that
``groupdq & dqflags.pixel['SATURATED']`` reads as in the official pipeline.
"""

_PIXEL_NAMES = [
    "DO_NOT_USE", "SATURATED", "JUMP_DET", "DROPOUT", "OUTLIER", "PERSISTENCE", "AD_FLOOR",
    "CHARGELOSS", "RESERVED", "NON_SCIENCE", "DEAD", "HOT", "WARM", "LOW_QE", "RC", "TELEGRAPH",
    "NONLINEAR", "BAD_REF_PIXEL", "NO_FLAT_FIELD", "NO_GAIN_VALUE", "NO_LIN_CORR", "NO_SAT_CHECK",
    "UNRELIABLE_BIAS", "UNRELIABLE_DARK", "UNRELIABLE_SLOPE", "UNRELIABLE_FLAT", "OPEN",
    "ADJ_OPEN", "FLUX_ESTIMATED", "MSA_FAILED_OPEN", "OTHER_BAD_PIXEL", "REFERENCE_PIXEL",
]

#: Pixel flags (PIXELDQ, DQ), including GOOD = 0.
pixel = {"GOOD": 0}
pixel.update({name: 1 << bit for bit, name in enumerate(_PIXEL_NAMES)})

#: Group flags (GROUPDQ); they share bit positions with the pixel flags.
group = {
    "GOOD": 0,
    "DO_NOT_USE": pixel["DO_NOT_USE"],
    "SATURATED": pixel["SATURATED"],
    "JUMP_DET": pixel["JUMP_DET"],
    "DROPOUT": pixel["DROPOUT"],
    "PERSISTENCE": pixel["PERSISTENCE"],
    "AD_FLOOR": pixel["AD_FLOOR"],
    "CHARGELOSS": pixel["CHARGELOSS"],
}


def interpret_bit_flags(value, mnemonic_map=None):
    """Return the list of flag names set in an integer DQ value."""
    table = pixel if mnemonic_map is None else mnemonic_map
    value = int(value)
    return [name for name, bit in table.items() if bit and value & bit]
