"""configpipe's tooling: what runs on engineers' machines and in CI, never in Lambda.

- :mod:`configpipe_tools.cli`     the ``configpipe`` command line
- :mod:`configpipe_tools.local`   the local pipeline (the synthesised stack on the moto server)
- :mod:`configpipe_tools.harness` the in-process AWS harness shared by the tests and benchmarks

The runtime package (``functions/configpipe``) never imports this one; ``make lint`` enforces it
with import-linter.
"""
