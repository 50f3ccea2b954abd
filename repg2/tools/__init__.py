"""Tools around the translation: the tracer, the benchmarks, the node shell, ``xref`` and the demo.

- ``repg2.tools.trace``: a message tracer after OTP's ``dbg``, drawing sequence
  diagrams of real runs (``repg2.tools.drawing`` holds its picture base);
- ``repg2.tools.bench``: ``python -m repg2 bench``, pg2's performance
  characteristics beside their floors and real Erlang's figures;
- ``repg2.tools.shell``: ``python -m repg2 shell``, a node with a REPL, as ``erl -name``;
- ``repg2.tools.preflight``: ``python -m repg2 preflight``, the day-before check of a workshop laptop;
- ``repg2.tools.reach``: why a node cannot be reached (the shell's ``ping`` and the pre-flight use it);
- ``repg2.tools.xref``: ``python -m repg2 xref``, the map from Erlang functions to their translations;
- ``repg2.tools.demo``: ``python -m repg2 demo``, a narrated pg2 session on three real nodes;
- ``repg2.tools.cli``: the ``python -m repg2`` command line itself.

They use the translation; the translation never imports them.
"""
