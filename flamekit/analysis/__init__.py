"""Analysis stage: what a run's captures say, computed from the files it left behind.

Data flows through the modules in this order (each imports only those before it)::

    collapsed   parse collapsed stacks into a Profile; count samples
    events      what an event's stacks end with (cpu / alloc / lock)
    stats       ± points of a share, MIN_SAMPLES, beyond_noise
    hotspots    rank a Profile: hotspots, application frames, classes, shares
    values      read figures out of any manifest safely
    captures    load a run directory's captures (CaptureData)
    validity    reasons to distrust a run (validity_warnings, run_warnings)
    compare     two runs side by side (compare_runs, compare_profiles)

Nothing here talks to Docker, prints, or imports invoke, targets or capture; the run store
is :mod:`flamekit.runs`, the outputs are :mod:`flamekit.render`.
"""
