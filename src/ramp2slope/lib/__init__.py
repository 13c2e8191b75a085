"""The functions of ``jwst.lib`` that detector1 users call on their own, for scripts written
against jwst: :func:`reffile_utils.get_subarray_model` (a reference model cut to a science
exposure's subarray or stripes) and :func:`stripe_utils.collate_superstripes` (a superstripe
ramp put back into an ordinary ramp of its parent frame). They take and give ramp2slope's data
models and are built on :mod:`ramp2slope.references`."""
