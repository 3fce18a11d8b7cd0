"""`jit`: jax.jit with the XLA compiler options this project measured to be faster on a CPU.

jaxlib 0.10's XLA:CPU hands dots, reductions and convolutions to YNNPACK by default. On this
project's models its own kernels (Eigen's, and its loop emitters) are faster: measured side by
side in one process with `python -m benchmarks.xla_options`, the dense train step runs ~1.7x and
the conv one ~1.4x as fast without YNNPACK (on an idle machine; ~1.1x on a busy one). The option
is one of XLA's DebugOptions, which every backend accepts and only XLA:CPU reads, so GPU compiles
are unaffected.
"""

import functools

import jax

CPU_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ""}  # "": no YNNPACK fusions

jit = functools.partial(jax.jit, compiler_options=CPU_OPTIONS)
