"""A test harness: a cluster of real nodes, this process and child OS processes.

There is no single Erlang original. OTP's test suites start extra nodes
with ``test_server:start_node`` (on top of ``slave``, later ``peer``) and
RePG2's suites with a NodeManager; this harness does the same job for
Python nodes, and every method says which tool it stands in for.

What it does: ``Cluster(n)`` makes this process node ``a@127.0.0.1``
(``net_kernel.start``) and starts ``b``, ``c``... as child processes with
``multiprocessing`` (spawn start method, so nothing of this process's
threads leaks into them). Each child runs a node that joins ``a`` (the
others come by transitive connection) and serves a *control channel*: a
``multiprocessing.connection`` with an authkey, outside the distribution,
so :meth:`Cluster.rpc` and :meth:`Cluster.spawn` reach a node even while a
partition cuts it off, as OTP's suites keep a path to their nodes.

Partitions: each side *blocks* the nodes of the other sides
(``repg2.dist.block``): connections are cut and refused both ways until
:meth:`Cluster.heal`.

No orphans: leaving the ``with`` block (after a failing test or on Ctrl-C
too) stops every child; so does an ``atexit`` hook; and a child whose
control channel closes (its parent died, even by SIGKILL) stops itself.
Children stop gracefully (``net_kernel.stop`` and a normal exit, also on
SIGTERM), so coverage measured in them is written.

Platforms: the harness uses the portable calls of ``multiprocessing``
(``Process.terminate``/``kill``: SIGTERM/SIGKILL on POSIX,
``TerminateProcess`` on Windows) and no ``fork``. One thing has no
portable equivalent: :meth:`Cluster.freeze` stops a node's OS process
without a word (SIGSTOP), as a closed laptop lid does, and on Windows it
raises :class:`ClusterError` saying so.

Pitfall: functions handed to :meth:`Cluster.rpc` and :meth:`Cluster.spawn`
travel by pickle, i.e. by reference: they must be module-level functions of
an importable module, never of a notebook or ``__main__``.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import queue
import secrets
import signal
import socket
import string
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from repg2 import dist, erlang, net_kernel
from repg2.erlang import Pid

__all__ = ["Cluster", "ClusterError"]

log = logging.getLogger("repg2.testing.cluster")

START_TIMEOUT = 30.0  # seconds for a child to come up; spawn + imports take ~0.1-0.5 s
STOP_TIMEOUT = 5.0  # seconds for a graceful stop before terminate(), then kill()
SIGNAL_CHECK = 0.2  # seconds a child's main thread waits for a request before it lets signal handlers run


class ClusterError(RuntimeError):
    """A node of the cluster could not be started, reached or stopped."""


@dataclass
class _Child:
    """The parent's handle on one child node.

    ``lock`` serialises requests on ``conn``: one request, one reply.
    """

    name: str
    process: Any  # multiprocessing.Process (spawn context)
    conn: Any = None  # multiprocessing.connection.Connection once it said hello
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_id: int = 0


_live: weakref.WeakSet[Cluster] = weakref.WeakSet()


def _close_all() -> None:
    """Stop the children of every cluster still open when Python exits."""
    for cluster in list(_live):
        with contextlib.suppress(Exception):
            cluster.close()


atexit.register(_close_all)


def _nodelay_conn(conn: Any) -> None:
    """Set TCP_NODELAY on the socket under a ``multiprocessing.connection``.

    ``multiprocessing.connection`` writes the length and the payload of a
    message separately, so without it Nagle's algorithm delays replies.
    """
    # fromfd duplicates the descriptor (a socket handle on Windows), so
    # closing this socket object leaves the connection's own open.
    sock = socket.fromfd(conn.fileno(), socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    finally:
        sock.close()


class Cluster:
    """Nodes ``a`` (this process), ``b``, ``c``... on one host, for tests and demos.

    Use it as a context manager::

        with Cluster(3) as cluster:
            a, b, c = cluster.nodes
            pid = cluster.spawn(b, some_module.loop)

    ``cookie`` defaults to a fresh random one per cluster; ``ticktime`` and
    ``setuptime`` (seconds) are passed to every node's ``net_kernel.start``;
    ``prefix`` goes before each node's letter (default: the pytest-xdist
    worker id, so parallel workers never share names).
    """

    def __init__(
        self,
        n: int = 3,
        cookie: str | None = None,
        ticktime: float | None = None,
        setuptime: float = 5.0,
        prefix: str | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        if not 1 <= n <= 26:
            raise ValueError("a Cluster has 1 to 26 nodes")
        if prefix is None:
            worker = os.environ.get("PYTEST_XDIST_WORKER", "")
            prefix = f"{worker}_" if worker else ""
        self.prefix = prefix
        self.host = host
        self.cookie = cookie if cookie is not None else secrets.token_hex(16)
        self.ticktime = ticktime
        self.setuptime = setuptime
        self.nodes: list[str] = [self._name(i) for i in range(n)]
        self._children: dict[str, _Child] = {}
        self._authkey = secrets.token_bytes(32)
        self._listener: Any = None
        self._acceptor: threading.Thread | None = None
        self._hellos: dict[str, Any] = {}  # node name -> control connection that said hello
        self._hello_cond = threading.Condition()
        self._started_here = False
        self._closed = False
        self._frozen: set[str] = set()  # nodes stopped by freeze() and not yet thawed

    def _name(self, index: int) -> str:
        """Return the node name of the ``index``-th node: ``a@host``, ``b@host``..."""
        return f"{self.prefix}{string.ascii_lowercase[index]}@{self.host}"

    # -- Starting and stopping the cluster ---------------------------------------

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        """Make this process the first node and start the others; wait until all are connected.

        Raises:
            ClusterError: a node did not come up (its stderr says why).
        """
        _live.add(self)
        try:
            self._listener = multiprocessing.connection.Listener(("127.0.0.1", 0), authkey=self._authkey)
            self._acceptor = threading.Thread(target=self._accept_loop, daemon=True, name="cluster-control")
            self._acceptor.start()
            result = net_kernel.start(
                self.nodes[0], cookie=self.cookie, ticktime=self.ticktime, setuptime=self.setuptime
            )
            if result[0] != "ok":
                raise ClusterError(f"cannot start node {self.nodes[0]} in this process: {result!r}")
            self._started_here = True
            for name in self.nodes[1:]:
                self._launch(name, self.cookie)
            for name in self.nodes[1:]:
                self._await_ready(name)
            self.wait_connected()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop every child node (gracefully, then by force) and this node."""
        if self._closed:
            return
        self._closed = True
        children = [c for c in self._children.values() if c.process.is_alive()]
        for child in children:
            _continue(child)  # a frozen node must run to stop
            if child.conn is not None:
                with contextlib.suppress(Exception):
                    child.conn.send(("stop", -1))
        for child in children:
            self._reap(child)
        if self._started_here:
            net_kernel.stop()
        if self._listener is not None:
            # Listener.accept blocks in the kernel and close() does not wake
            # it on every platform; a connection attempt does.
            with contextlib.suppress(Exception):
                socket.create_connection(self._listener.address, timeout=1).close()
            self._listener.close()
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)
        _live.discard(self)

    def _accept_loop(self) -> None:
        """Accept control connections from children; each first says which node it is."""
        while not self._closed:
            try:
                conn = self._listener.accept()
            except Exception:  # noqa: BLE001 - closed listener, or a client that failed the authkey
                if self._closed:
                    return
                continue
            try:
                _nodelay_conn(conn)
                if not conn.poll(START_TIMEOUT):
                    conn.close()
                    continue
                hello = conn.recv()
            except Exception:  # noqa: BLE001 - a child that died while saying hello
                conn.close()
                continue
            if isinstance(hello, tuple) and len(hello) == 2 and hello[0] == "hello":
                with self._hello_cond:
                    self._hellos[hello[1]] = conn
                    self._hello_cond.notify_all()
            else:
                conn.close()

    def _launch(self, name: str, cookie: str) -> None:
        """Start a child OS process that will run node ``name``."""
        ctx = multiprocessing.get_context("spawn")
        args = (
            name,
            cookie,
            self.ticktime,
            self.setuptime,
            self._listener.address,
            self._authkey,
            self.nodes[0],
        )
        process = ctx.Process(target=_node_main, args=args, name=f"repg2-node-{name}", daemon=True)
        with self._hello_cond:
            self._hellos.pop(name, None)
        process.start()
        self._children[name] = _Child(name, process)

    def _await_ready(self, name: str) -> int:
        """Wait until a child's node runs; return its creation."""
        child = self._children[name]
        deadline = time.monotonic() + START_TIMEOUT
        with self._hello_cond:
            while name not in self._hellos:
                if not child.process.is_alive():
                    raise ClusterError(f"node {name} died while starting (exit code {child.process.exitcode})")
                if time.monotonic() > deadline:
                    raise ClusterError(f"node {name} did not call back within {START_TIMEOUT} s")
                self._hello_cond.wait(0.1)
            child.conn = self._hellos.pop(name)
        if not child.conn.poll(max(0.0, deadline - time.monotonic())):
            raise ClusterError(f"node {name} did not start within {START_TIMEOUT} s")
        status, _id, value = child.conn.recv()
        if status != "ready":
            raise ClusterError(f"node {name} failed to start: {value}")
        return int(value)

    def _reap(self, child: _Child, timeout: float | None = None) -> None:
        """Wait for a child to exit, then terminate it (SIGTERM), then kill it (SIGKILL); close its channel.

        Each wait lasts ``timeout`` seconds, by default ``STOP_TIMEOUT`` as it is at the call.
        """
        timeout = STOP_TIMEOUT if timeout is None else timeout
        child.process.join(timeout)
        if child.process.is_alive():
            log.warning("node %s did not stop in %s s: terminating it", child.name, timeout)
            child.process.terminate()
            child.process.join(timeout)
        if child.process.is_alive():
            child.process.kill()
            child.process.join()
        if child.conn is not None:
            child.conn.close()
            child.conn = None

    # -- Driving nodes ----------------------------------------------------------------

    def rpc(self, node: str, fun: Callable[..., Any], *args: Any, timeout: float = 30.0) -> Any:
        """Run ``fun(*args)`` in a new process on ``node`` and return its value.

        Works during partitions. An exception raised by ``fun`` is raised
        here again.
        """
        if node == self.nodes[0]:
            return _local_call(fun, args, timeout)
        return self._request(node, "rpc", (fun, args), timeout)

    def spawn(self, node: str, fun: Callable[..., Any], *args: Any) -> Pid:
        """Start a process running ``fun(*args)`` on ``node`` and return its pid.

        Erlang: erlang:spawn/4 (spawn(Node, M, F, A))
        """
        if node == self.nodes[0]:
            return erlang.spawn(fun, *args)
        pid: Pid = self._request(node, "spawn", (fun, args), 30.0)
        return pid

    def _request(self, node: str, op: str, payload: tuple[Any, ...], timeout: float) -> Any:
        """Send one control request to a child and wait for its reply."""
        child = self._children.get(node)
        if child is None or child.conn is None:
            raise ClusterError(f"node {node} is not running")
        with child.lock:
            child.next_id += 1
            request_id = child.next_id
            try:
                child.conn.send((op, request_id, *payload))
            except (OSError, ValueError) as exc:
                raise ClusterError(f"node {node} is not reachable: {exc}") from None
            deadline = time.monotonic() + timeout
            while True:
                # The TimeoutError is raised outside the try: it is an OSError,
                # which the except below would turn into "went away".
                try:
                    answered = child.conn.poll(max(0.0, deadline - time.monotonic()))
                    if answered:
                        status, reply_id, value = child.conn.recv()
                except (EOFError, OSError) as exc:
                    raise ClusterError(f"node {node} went away during {op}: {exc!r}") from None
                except Exception as exc:  # noqa: BLE001 - unpickling a reply runs the classes' own code
                    # A value or exception that pickles on the node but cannot be
                    # rebuilt here (a constructor with other arguments): say so,
                    # as the node says of a value it cannot pickle.
                    raise ClusterError(f"node {node} answered {op} with what cannot be rebuilt here: {exc!r}") from None
                if not answered:
                    raise TimeoutError(f"node {node} did not answer {op} within {timeout} s")
                if reply_id != request_id:
                    continue  # the late reply of a request that timed out
                if status == "ok":
                    return value
                raise value

    def os_pid(self, node: str) -> int:
        """Return the OS process id of a child node (for signals in tests).

        Erlang: os:getpid/0 (on that node)
        """
        if node == self.nodes[0]:
            return os.getpid()
        return int(self._children[node].process.pid)

    def nodes_of(self, node: str) -> list[str]:
        """Return ``erlang.nodes()`` as seen by ``node``.

        Erlang: rpc:call/4 (rpc:call(Node, erlang, nodes, []))
        """
        result: list[str] = self.rpc(node, erlang.nodes)
        return result

    def live_nodes(self) -> list[str]:
        """Return the nodes that are running (this one and the live children)."""
        return [
            n
            for n in self.nodes
            if n == self.nodes[0] or (n in self._children and self._children[n].process.is_alive())
        ]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
        """Poll ``predicate`` until it is true; raise ``TimeoutError`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
            time.sleep(0.01)  # polling interval of a deadline-bounded wait, not a synchronisation

    def wait_connected(self, nodes: Iterable[str] | None = None, timeout: float = 20.0) -> None:
        """Wait until every node in ``nodes`` (default: all live ones) is connected to all the others.

        Transitive connection should form the mesh by itself; after a second
        without it, each node is also asked to connect to the others.
        """
        group = list(self.live_nodes() if nodes is None else nodes)
        started = time.monotonic()
        nudged = False

        def meshed() -> bool:
            """Say whether each node sees every other node of the group."""
            nonlocal nudged
            if not nudged and time.monotonic() - started > 1.0:
                nudged = True
                for node in group:
                    self.rpc(node, _connect_all, group)
            return all(set(self.nodes_of(n)) >= set(group) - {n} for n in group)

        self.wait_for(meshed, timeout, f"a full mesh of {group}")

    # -- Failures: partitions, stops, kills, restarts -------------------------------

    def partition(self, *groups: Iterable[str]) -> None:
        """Split the cluster: each group keeps talking inside, never across, until heal()."""
        sides = [list(g) for g in groups]
        everyone = [n for side in sides for n in side]
        for side in sides:
            others = [n for n in everyone if n not in side]
            for node in side:
                self.rpc(node, dist.block, others)
        for side in sides:
            for node in side:
                self.wait_for(self._sees_only(node, side), 10.0, f"{node} to see only {side}")

    def _sees_only(self, node: str, side: list[str]) -> Callable[[], bool]:
        """Return a predicate: ``node`` is connected to no node outside ``side``."""
        return lambda: set(self.nodes_of(node)) <= set(side)

    def heal(self) -> None:
        """Undo every partition and reconnect all live nodes."""
        live = self.live_nodes()
        for node in live:
            self.rpc(node, dist.unblock)
        for node in live:
            self.rpc(node, _connect_all, live)
        self.wait_connected(live)

    def stop(self, node: str) -> None:
        """Stop a child node gracefully (``net_kernel.stop``, normal exit: coverage is written).

        Erlang: slave:stop/1
        """
        child = self._child(node)
        if child.process.is_alive() and child.conn is not None:
            with contextlib.suppress(ClusterError, TimeoutError):
                self._request(node, "stop", (), STOP_TIMEOUT)
        self._reap(child)

    def kill(self, node: str) -> None:
        """Kill a child node outright: no goodbye, no coverage data.

        ``Process.kill``: SIGKILL on POSIX, ``TerminateProcess`` on Windows.
        """
        child = self._child(node)
        child.process.kill()
        child.process.join()
        self._frozen.discard(node)
        if child.conn is not None:
            child.conn.close()
            child.conn = None

    def freeze(self, node: str) -> None:
        """Stop a child node's OS process where it stands (SIGSTOP), as a closed laptop lid does.

        Its connections stay open but fall silent: the other nodes notice
        only when the ticks stop (``net_ticktime``), and until then every
        pg2 write waits on it. :meth:`thaw` lets it run again; leaving the
        ``with`` block thaws it to stop it.

        Raises:
            ClusterError: on Windows, which has no SIGSTOP (and no
            portable call that suspends a process).
        """
        child = self._child(node)
        if not hasattr(signal, "SIGSTOP"):
            raise ClusterError(
                f"cannot freeze {node}: suspending a process needs SIGSTOP, which {sys.platform} lacks "
                "(kill() or a partition are the portable failures)"
            )
        os.kill(child.process.pid, signal.SIGSTOP)
        self._frozen.add(node)

    def thaw(self, node: str) -> None:
        """Let a node stopped by :meth:`freeze` run again (SIGCONT)."""
        child = self._child(node)
        self._frozen.discard(node)
        _continue(child)

    def restart(self, node: str) -> None:
        """Stop a child node if it runs and start it again: same name, new creation, reconnected."""
        child = self._child(node)
        if child.process.is_alive():
            self.stop(node)
        self._launch(node, self.cookie)
        self._await_ready(node)
        self.wait_connected()

    def add(self, cookie: str | None = None) -> str:
        """Start one more child node (with another cookie if given) and return its name.

        A node with the cluster's cookie joins the mesh before this returns;
        one with another cookie cannot connect, which is what a test of
        cookies wants.
        """
        name = self._name(len(self.nodes))
        self.nodes.append(name)
        self._launch(name, self.cookie if cookie is None else cookie)
        self._await_ready(name)
        if cookie is None or cookie == self.cookie:
            self.wait_connected()
        return name

    def _child(self, node: str) -> _Child:
        """Return the handle of a child node, refusing this node."""
        if node == self.nodes[0]:
            raise ClusterError(f"{node} is this process: leave the with block to stop it")
        try:
            return self._children[node]
        except KeyError:
            raise ClusterError(f"no node {node} in this cluster") from None


# == Functions that run on the nodes ===============================================


def _continue(child: _Child) -> None:
    """Send SIGCONT to a child where the platform has it (a frozen child must run to stop)."""
    if hasattr(signal, "SIGCONT") and child.process.pid is not None:
        with contextlib.suppress(OSError):
            os.kill(child.process.pid, signal.SIGCONT)


def _connect_all(nodes: list[str]) -> bool:
    """Connect this node to each of ``nodes``; True if all are connected."""
    return all(net_kernel.connect_node(n) is True for n in nodes if n != erlang.node())


def _local_call(fun: Callable[..., Any], args: tuple[Any, ...], timeout: float) -> Any:
    """Run ``fun(*args)`` in a new process on this node and return or raise its outcome."""
    results: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
    erlang.spawn(_capture, results.put, fun, args)
    try:
        status, value = results.get(timeout=timeout)
    except queue.Empty:
        raise TimeoutError(f"local call of {fun!r} did not return within {timeout} s") from None
    if status == "ok":
        return value
    raise value


def _capture(put: Callable[[tuple[str, Any]], None], fun: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """Run ``fun(*args)`` and hand ``('ok', value)`` or ``('error', exception)`` to ``put``."""
    try:
        put(("ok", fun(*args)))
    except BaseException as exc:  # noqa: BLE001 - the caller re-raises whatever happened
        put(("error", exc))
        if not isinstance(exc, Exception):
            raise


def _node_main(
    name: str,
    cookie: str,
    ticktime: float | None,
    setuptime: float,
    control: tuple[str, int],
    authkey: bytes,
    join: str,
) -> None:
    """The entry point of a child node: start it, join the cluster, serve the control channel.

    Ends when the parent says ``stop``, when the control channel closes
    (the parent died), or on SIGTERM; always through ``net_kernel.stop`` and
    a normal return, so coverage data is written.
    """
    logging.basicConfig(
        level=os.environ.get("REPG2_LOG_LEVEL", "WARNING"),
        format=f"%(asctime)s [{name}] %(name)s %(levelname)s: %(message)s",
    )
    signal.signal(signal.SIGTERM, _sigterm)
    conn = multiprocessing.connection.Client(control, authkey=authkey)
    _nodelay_conn(conn)
    write_lock = threading.Lock()

    def reply(status: str, request_id: int, value: Any) -> None:
        """Send one reply on the control channel; a value that cannot be pickled becomes an error."""
        with write_lock:
            try:
                conn.send((status, request_id, value))
            except (OSError, ValueError):
                pass  # the parent is gone
            except Exception as exc:  # noqa: BLE001 - an unpicklable result or exception
                conn.send(("error", request_id, ClusterError(f"cannot send back {value!r}: {exc!r}")))

    conn.send(("hello", name))
    try:
        result = net_kernel.start(name, cookie=cookie, ticktime=ticktime, setuptime=setuptime)
        if result[0] != "ok":
            reply("failed", 0, repr(result))
            return
        net_kernel.connect_node(join)
        reply("ready", 0, erlang._identity.creation)
        while True:
            try:
                # Poll, do not block in recv: the kernel may hand a SIGTERM to any
                # thread, and its handler runs only when this main thread next runs
                # Python code; a blocked recv would put that off until a request came.
                if not conn.poll(SIGNAL_CHECK):
                    continue
                request = conn.recv()
            except (EOFError, OSError):
                break  # the parent is gone: stop rather than linger as an orphan
            match request:
                case ("rpc", request_id, fun, args):
                    erlang.spawn(_control_call, reply, request_id, fun, args)
                case ("spawn", request_id, fun, args):
                    try:
                        reply("ok", request_id, erlang.spawn(fun, *args))
                    except Exception as exc:  # noqa: BLE001 - handed back to the harness
                        reply("error", request_id, exc)
                case ("stop", request_id):
                    reply("ok", request_id, "ok")
                    break
                case _:
                    log.error("unknown control request %r", request)
    finally:
        net_kernel.stop()
        conn.close()


def _control_call(reply: Callable[[str, int, Any], None], request_id: int, fun: Callable[..., Any], args: Any) -> None:
    """Run one harness rpc in its own process and send back its value or exception."""
    try:
        value = fun(*args)
    except Exception as exc:  # noqa: BLE001 - handed back to the harness
        reply("error", request_id, exc)
    else:
        reply("ok", request_id, value)


def _sigterm(signum: int, frame: Any) -> None:
    """Turn SIGTERM into a normal exit, so the node stops cleanly and coverage is saved."""
    raise SystemExit(128 + signum)
