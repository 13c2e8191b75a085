"""Build hook: compile the numba kernels into the built package (ramp2slope.runtime.precompile).

Everything else about the package is in pyproject.toml. After the sources are copied to the
build folder, the kernels of a usual run are compiled there, so that their cache files are
installed with the package and a fresh install's first run does not spend minutes compiling.
``RAMP2SLOPE_PRECOMPILE=0`` skips it; editable installs never do it (their kernels are compiled
into the source tree on first use). A failure here does not fail the install: it is reported,
and the first run compiles as it would without this hook.
"""
import os
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_py import build_py


class build_py_with_kernels(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False) or os.environ.get("RAMP2SLOPE_PRECOMPILE", "1") == "0":
            return
        build_lib = os.path.abspath(self.build_lib)
        env = {key: value for key, value in os.environ.items()
               if key not in ("NUMBA_CACHE_DIR", "NUMBA_DISABLE_JIT")}
        # pip's isolated build environment reaches the interpreter through PYTHONPATH: keep it
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [build_lib, os.environ.get("PYTHONPATH")]))
        print("ramp2slope: compiling the numba kernels into the package (a few minutes; "
              "RAMP2SLOPE_PRECOMPILE=0 skips this)", flush=True)
        result = subprocess.run([sys.executable, "-m", "ramp2slope.runtime.precompile"], env=env,
                                cwd=build_lib, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        print(result.stdout, flush=True)
        if result.returncode:
            print("ramp2slope: WARNING: the kernels could not be compiled at build time (above); "
                  "the first run will compile them", file=sys.stderr, flush=True)


setup(cmdclass={"build_py": build_py_with_kernels})
