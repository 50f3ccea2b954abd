"""RePy2: Erlang/OTP's pg2 translated line by line into Python, on a real multi-node runtime.

The top level of the package is the translation, one Python module per
Erlang module, so ``ls repg2`` is the reading guide: ``repg2.pg2`` is
``pg2.erl``; ``erlang``, ``terms``, ``ets``, ``gen_server``, ``supervisor``,
``kernel``, ``global_``, ``net_kernel``, ``rpc`` and ``dist`` are the parts
of OTP that pg2 stands on. Beneath it, and never imported by it:
``repg2.testing`` (the ``Cluster`` harness of real nodes, pg2_SUITE's
``sane``/``wsane``), ``repg2.tools`` (tracer, benchmarks, node shell,
``xref``, demo) and ``repg2.examples``.

Start with the README, then ``TRANSLATION_NOTES.md`` (every divergence from
Erlang) and the book under ``docs/`` ("Reading guide": every Erlang
function beside its translation); ``python -m repg2 xref`` prints the same
map in a terminal.
"""

__version__ = "0.1.0"
