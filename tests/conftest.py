"""Test configuration shared by every test module.

The official ``jwst`` package is the oracle for many tests. It must never reach the network, so
the CRDS environment is pinned to a stub cache before anything imports it (see
``jwst_oracle.py``).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import jwst_oracle  # noqa: E402  (sets the CRDS environment before jwst is imported)

jwst_oracle.configure_offline_crds()
