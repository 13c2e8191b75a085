"""ramp2slope's kernels loaded from numba's cache without numba's registry refresh
(runtime/cache_loading), each case in fresh interpreters with a cache of its own."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from ramp2slope.runtime import cache_loading

import numba

pytestmark = pytest.mark.skipif(
    cache_loading._numba_version(numba) not in cache_loading.CHECKED_NUMBA,
    reason="the loading is left to numba on the numba versions it was not checked against")

# one of the pipeline's parallel kernels (its rebuild must start numba's thread pool), called
# on a tiny ramp; the report says what was loaded and how
_RAMP2SLOPE_KERNEL = """
import json, sys
import numpy as np
from ramp2slope.runtime import cache_loading
installed = cache_loading.install()
from ramp2slope.dq_init.dq_init import _or_dnu_groups
gdq = np.zeros((3, 4, 5), np.uint8)
mask = np.zeros((4, 5), np.uint32)
mask[1, 2] = 1
_or_dnu_groups(gdq, mask, np.uint32(1))
print(json.dumps({
    "installed": installed,
    "hits": sum(_or_dnu_groups.stats.cache_hits.values()),
    "misses": sum(_or_dnu_groups.stats.cache_misses.values()),
    "registries": "numba.np.linalg" in sys.modules,
    "flagged": int(gdq.sum()), "flagged_where": [int(v) for v in np.argwhere(gdq[0])[0]],
}))
"""


def _run(script, tmp_path, **env):
    environment = dict(os.environ)
    environment.pop(cache_loading._ENV_SWITCH, None)
    paths = [str(tmp_path)] + [p for p in [environment.get("PYTHONPATH")] if p]
    environment.update(NUMBA_CACHE_DIR=str(tmp_path / "numba_cache"),
                       PYTHONPATH=os.pathsep.join(paths), **env)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=environment,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_cached_kernel_loads_without_the_refresh_and_computes_the_same(tmp_path):
    first = _run(_RAMP2SLOPE_KERNEL, tmp_path)
    assert first["misses"] == 1 and first["hits"] == 0    # compiled, refresh and all
    assert first["registries"]

    loaded = _run(_RAMP2SLOPE_KERNEL, tmp_path)
    assert loaded["installed"]
    assert loaded["hits"] == 1 and loaded["misses"] == 0
    assert not loaded["registries"]          # numba's implementations were not imported
    assert loaded["flagged"] == 3 and loaded["flagged_where"] == [1, 2]


def test_the_switch_leaves_numba_s_own_loading(tmp_path):
    _run(_RAMP2SLOPE_KERNEL, tmp_path)
    loaded = _run(_RAMP2SLOPE_KERNEL, tmp_path, RAMP2SLOPE_NUMBA_FULL_REFRESH="1")
    assert not loaded["installed"]
    assert loaded["hits"] == 1 and loaded["registries"]
    assert loaded["flagged"] == 3


def test_other_packages_kernels_keep_numba_s_refresh(tmp_path):
    (tmp_path / "userkernels.py").write_text(textwrap.dedent("""
        import numba

        @numba.njit(cache=True)
        def add_one(x):
            return x + 1
    """))
    script = """
        import json, sys
        from ramp2slope.runtime import cache_loading
        installed = cache_loading.install()
        from userkernels import add_one
        value = add_one(41)
        print(json.dumps({"installed": installed, "value": value,
                          "hits": sum(add_one.stats.cache_hits.values()),
                          "registries": "numba.np.linalg" in sys.modules}))
    """
    _run(script, tmp_path)
    loaded = _run(script, tmp_path)
    assert loaded["installed"] and loaded["hits"] == 1 and loaded["value"] == 42
    assert loaded["registries"]              # loaded by numba's own method


def test_an_unchecked_numba_version_is_left_alone(tmp_path):
    script = """
        import json
        import numba
        from numba.core import caching
        numba.__version__ = "0.59.0"
        from ramp2slope.runtime import cache_loading
        installed = cache_loading.install()
        print(json.dumps({"installed": installed,
                          "patched": hasattr(caching.Cache.load_overload, "__wrapped__")}))
    """
    assert _run(script, tmp_path) == {"installed": False, "patched": False}
