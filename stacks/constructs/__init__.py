"""One construct per capability of the pipeline (bus, change log, functions, operations)."""
