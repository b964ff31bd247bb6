"""Speed and quality of VAE Lab against plain Keras, interaction latency and app start-up.

`python -m benchmarks.run` runs everything and writes benchmarks/RESULTS.md; see benchmarks/README.md.
"""
