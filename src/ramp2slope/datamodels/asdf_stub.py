"""A minimal ``ASDF`` extension for our FITS products.

The official tools always write an ASDF extension (the serialized metadata tree) and some of
them refuse a file without one: the official pipeline's parameter lookup reads
``hdulist["ASDF"]`` when given a file name. Ours carries an ASDF document with no metadata and
no FITS hash, so every reader takes the metadata from the FITS headers, which are the truth.
"""
import numpy as np

EXTNAME = "ASDF"


def asdf_stub_records(software="ramp2slope", version="0.1.0"):
    """The one-row table (column ASDF_METADATA, uint8 bytes) of the stub extension."""
    text = (
        "#ASDF 1.0.0\n"
        "#ASDF_STANDARD 1.5.0\n"
        "%YAML 1.1\n"
        "%TAG ! tag:stsci.edu:asdf/\n"
        "--- !core/asdf-1.1.0\n"
        f"asdf_library: !core/software-1.0.0 {{name: {software}, version: {version}}}\n"
        "...\n"
    ).encode("ascii")
    records = np.zeros(1, dtype=[("ASDF_METADATA", np.uint8, (len(text),))])
    records["ASDF_METADATA"][0] = np.frombuffer(text, dtype=np.uint8)
    return records
