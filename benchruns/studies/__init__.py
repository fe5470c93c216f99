"""What produces the project's own docs and studies, apart from what users' commands run.

``docs`` (the generated tables of README.md and docs/), ``figures`` (the docs' measured data
tables), ``installtime`` (install sizes and times), ``branchgrowth`` (the results branch's size
per year at the nightly cadence), ``looptime`` (how long ``make test`` and the quick profile
take), ``errorrates`` (the gate's error rates resampled from real processes: the docs' table,
and ``make error-rates``), ``noisestudy`` (where ``ab``'s noise is) and ``abjobs`` (the docs'
table of real ab jobs). Each module records machine, commit and load with what it measures;
nothing in benchruns/ outside this package imports it, except cli.py, which gives the studies
their ``python -m benchruns`` command names (tests/test_imports.py checks it).
"""
