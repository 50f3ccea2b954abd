"""RePy2: Erlang/OTP's pg2 translated line by line into Python, on a real multi-node runtime.

One Python module per Erlang module (see ``DESIGN.md`` and the reading
guide): ``repg2.pg2`` is the translation of ``pg2.erl``; ``erlang``,
``ets``, ``gen_server``, ``supervisor``, ``global_``, ``net_kernel``,
``rpc`` and ``dist`` are the parts of OTP that pg2 stands on;
``repg2.cluster`` starts real nodes as OS processes for tests, notebooks
and workshops.
"""

__version__ = "0.1.0"
