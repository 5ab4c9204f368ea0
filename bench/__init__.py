"""wirekit's benchmarks: peers side by side in one run, ratios, a table and a plot (``python -m bench``)."""
