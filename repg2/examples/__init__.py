"""Small programs on top of pg2 that the notebooks run, on this node and on others.

A function handed to ``Cluster.rpc`` or ``Cluster.spawn`` travels by
reference (pickle), so it must live in an importable module: a function
defined in a notebook cannot run on another node. The notebooks' node-side
code lives here for that reason.

- :mod:`repg2.examples.pubsub`: the idea of Phoenix PubSub's pg2 adapter,
  one PubSub server per node joined to a pg2 group, and a chat on top.
- :mod:`repg2.examples.timeline`: a recorder of every node's
  ``pg2:get_members/1`` over time, drawn as a timeline (notebook 04).
"""
