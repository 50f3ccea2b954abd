"""Bad arguments to the public API raise a clear error and change nothing, anywhere on the node.

One table, one row per call: the function, the bad arguments, the error it
must raise (a ``TypeError`` for a guard that Erlang states in a clause head,
an ``ErlangError`` with reason ``badarg`` where Erlang raises badarg or
function_clause), and a pattern the message must match, naming the Erlang
function. Around each call the test snapshots the whole node: pg2's table,
every ETS table, global's locks, the registered names, the live processes,
a running gen_server's state (and that it still answers calls, so it is
neither stopped nor suspended), and the caller's own mailbox and monitors
(a call that fails must not leave a monitor or a late reply behind).

The modules' own tests check many single calls against a single table
(``test_ets.py``: ``test_bad_arguments``, ``test_update_counter_badarg``,
``test_select_badarg``, ``test_new_badarg``; ``test_global.py``:
``test_bad_arguments_raise_and_change_nothing``; ``test_gen_server.py``:
``test_multi_call_with_bad_arguments``, ``test_abcast_with_bad_arguments``,
``test_call_with_a_bad_server_reference_is_badarg``; ``test_pg2.py``:
``test_join_and_leave_reject_non_pids``, ``test_unhashable_group_name_is_rejected``).
The rows here are the calls those leave out, and the snapshot is of the
whole node. Three of the rows found bugs, fixed in ``repg2``: a bad timeout
to ``gen_server.call``/``stop``/``get_state``/``suspend`` used to be refused
only *after* the request was sent (so ``stop`` with a bad timeout stopped
the server, and every such call left a monitor and a late reply in the
caller); NaN and infinite timeouts were accepted (NaN waited for ever,
infinity crashed the wait); a group name that is not a term was refused
deep inside ``ets`` or ``global`` instead of by the pg2 function called.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support import recv, wait_until

from repg2 import erlang, ets, gen_server, global_, pg2
from repg2.erlang import ErlangError, Pid
from repg2.testing import member_loop

pytestmark = pytest.mark.timeout(60)

SERVER = "bad_args_server"
TABLE = "bad_args_table"
HELD = ("bad_args_resource", "bad_args_requester")  # a lock held by another process during each call


class Keeper:
    """A gen_server holding one value: ``'get'`` and ``('set', value)``."""

    def init(self, args: Any) -> Any:
        return ("ok", args)

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        match request:
            case "get":
                return ("reply", state, state)
            case ("set", value):
                return ("reply", "ok", value)
        return ("reply", ("error", request), state)


def hold(lock_id: Any, parent: Pid) -> None:
    """Take ``lock_id``, say so, and keep it until killed."""
    assert global_.set_lock(lock_id, [erlang.node()]) is True
    erlang.send(parent, ("holding", erlang.self()))
    erlang.receive(lambda m: False)


@pytest.fixture
def world(fresh_pg2: list[Pid]) -> Iterator[dict[str, Any]]:
    """A node with something everywhere: a pg2 group with a member, a table, a held lock, a server."""
    member = erlang.spawn(member_loop)
    fresh_pg2.append(member)
    assert pg2.create("g") == "ok"
    assert pg2.join("g", member) == "ok"
    assert pg2.join("g", member) == "ok"
    ets.new(TABLE, ["set", "public", "named_table"])
    ets.insert(TABLE, [("k", 1), ("n", 0)])
    holder = erlang.spawn(hold, HELD, erlang.self())
    assert recv(lambda m: m == ("holding", holder)) == ("holding", holder)
    server = gen_server.start(("local", SERVER), Keeper(), {"value": 1})[1]
    yield {"member": member, "server": server}
    erlang.exit(holder, "kill")
    if erlang.whereis(SERVER) != "undefined":
        gen_server.stop(SERVER)
    ets.delete(TABLE)


def snapshot() -> dict[str, Any]:
    """Everything a bad call could change on this node (the process count is compared apart)."""
    me = erlang._current()
    return {
        "pg2_table": ets.tab2list(pg2.TABLE),
        "tables": sorted(map(repr, ets.all())),
        "table": sorted(ets.tab2list(TABLE), key=repr),
        "locks": global_.get_locks(),
        "lock_pids": sorted(ets.tab2list(global_.PID_IDS), key=repr),
        "registered": sorted(erlang.registered()),
        "server_state": gen_server.call(SERVER, "get", 5),  # also: alive, and not suspended
        "my_mailbox": erlang.message_queue_len(),
        "my_monitors": dict(me.monitors),
        "my_links": set(me.links),
    }


def ref() -> Any:
    """A reference, where a pid is expected."""
    return erlang.make_ref()


NOT_A_TERM = object()
NAN = float("nan")
INF = float("inf")

# (call given the world, error type, message pattern)
CASES: list[Any] = [
    # -- pg2: names must be hashable terms, members pids (Erlang: is_pid guards; any term as a name)
    pytest.param(
        lambda w: pg2.create(NOT_A_TERM),
        TypeError,
        r"pg2:create/1: a group name must be an Erlang term",
        id="pg2.create-object",
    ),
    pytest.param(lambda w: pg2.create(NAN), TypeError, r"pg2:create/1: .*Erlang term", id="pg2.create-nan"),
    pytest.param(
        lambda w: pg2.create(("g", {})), TypeError, r"pg2:create/1: .*Erlang term", id="pg2.create-dict-inside"
    ),
    pytest.param(lambda w: pg2.delete(NOT_A_TERM), TypeError, r"pg2:delete/1: ", id="pg2.delete-object"),
    pytest.param(lambda w: pg2.delete({"g"}), TypeError, r"pg2:delete/1: .*hashable", id="pg2.delete-set"),
    pytest.param(lambda w: pg2.join(["g"], w["member"]), TypeError, r"pg2:join/2: .*hashable", id="pg2.join-list-name"),
    pytest.param(lambda w: pg2.join("g", ref()), TypeError, r"pg2:join/2: .*is not a pid", id="pg2.join-ref"),
    pytest.param(
        lambda w: pg2.join("g", (w["member"],)), TypeError, r"pg2:join/2: .*is not a pid", id="pg2.join-tuple"
    ),
    pytest.param(lambda w: pg2.leave(NOT_A_TERM, w["member"]), TypeError, r"pg2:leave/2: ", id="pg2.leave-object"),
    pytest.param(
        lambda w: pg2.leave("g", str(w["member"])), TypeError, r"pg2:leave/2: .*is not a pid", id="pg2.leave-str"
    ),
    pytest.param(
        lambda w: pg2.get_members(frozenset()), TypeError, r"pg2:get_members/1: ", id="pg2.get_members-frozenset"
    ),
    pytest.param(
        lambda w: pg2.get_local_members(NAN), TypeError, r"pg2:get_local_members/1: ", id="pg2.get_local_members-nan"
    ),
    pytest.param(
        lambda w: pg2.get_closest_pid([]), TypeError, r"pg2:get_closest_pid/1: ", id="pg2.get_closest_pid-list"
    ),
    pytest.param(lambda w: pg2.join("g"), TypeError, r"missing 1 required positional argument", id="pg2.join-arity"),
    pytest.param(lambda w: pg2.which_groups("g"), TypeError, r"positional argument", id="pg2.which_groups-arity"),
    # -- ets: pg2's protected table is the server's; bad keys, counters and specs are badarg
    pytest.param(
        lambda w: ets.insert(pg2.TABLE, (("group", "x"),)),
        ErlangError,
        r"badarg: ets:insert/2: protected",
        id="ets.insert-protected",
    ),
    pytest.param(
        lambda w: ets.delete(pg2.TABLE),
        ErlangError,
        r"badarg: ets:delete/1: protected",
        id="ets.delete-protected-table",
    ),
    pytest.param(
        lambda w: ets.delete_all_objects(pg2.TABLE),
        ErlangError,
        r"badarg: ets:delete_all_objects/1",
        id="ets.delete_all-protected",
    ),
    pytest.param(
        lambda w: ets.update_counter(pg2.TABLE, ("ref", w["member"]), (4, -1)),
        ErlangError,
        r"badarg: ets:update_counter/3",
        id="ets.update_counter-protected",
    ),
    pytest.param(
        lambda w: ets.new(TABLE, ["set", "named_table"]),
        ErlangError,
        r"badarg: ets:new/2: a table named",
        id="ets.new-name-taken",
    ),
    pytest.param(
        lambda w: ets.update_counter(TABLE, "k", (2, "one")),
        ErlangError,
        r"badarg: ets:update_counter/3",
        id="ets.update_counter-str-incr",
    ),
    pytest.param(
        lambda w: ets.update_counter(TABLE, "k", (1, 1)),
        ErlangError,
        r"badarg: ets:update_counter/3: position 1",
        id="ets.update_counter-key-pos",
    ),
    pytest.param(
        lambda w: ets.update_counter(TABLE, "k", [(2, 1), (3, 1)]),
        ErlangError,
        r"badarg: ets:update_counter/3: position 3",
        id="ets.update_counter-half-valid",
    ),
    pytest.param(
        lambda w: ets.insert(TABLE, [("a", 1), ("b", NAN)]),
        ErlangError,
        r"badarg: ets:insert/2",
        id="ets.insert-nan-in-batch",
    ),
    pytest.param(lambda w: ets.lookup(TABLE, NOT_A_TERM), ErlangError, r"badarg: ets:lookup/2", id="ets.lookup-object"),
    pytest.param(lambda w: ets.select(TABLE, "not a spec"), ErlangError, r"badarg: ets:select/2", id="ets.select-str"),
    pytest.param(lambda w: ets.info(TABLE, "colour"), ErlangError, r"badarg: ets:info/2", id="ets.info-item"),
    # -- global_: malformed lock ids, node lists, retries; the held lock must stay held
    pytest.param(
        lambda w: global_.set_lock(HELD[0]),
        global_.BadArgument,
        r"global:set_lock/3: a lock id",
        id="global.set_lock-not-a-pair",
    ),
    pytest.param(
        lambda w: global_.set_lock((HELD[0], "other"), [3]),
        global_.BadArgument,
        r"global:set_lock/3: nodes",
        id="global.set_lock-int-node",
    ),
    pytest.param(
        lambda w: global_.set_lock(HELD, None, NAN),
        global_.BadArgument,
        r"global:set_lock/3: retries",
        id="global.set_lock-nan-retries",
    ),
    pytest.param(
        lambda w: global_.del_lock(HELD, erlang.node()),
        global_.BadArgument,
        r"global:del_lock/2: nodes",
        id="global.del_lock-str-nodes",
    ),
    pytest.param(
        lambda w: global_.del_lock((HELD[0], NOT_A_TERM)),
        global_.BadArgument,
        r"global:del_lock/2: .*terms",
        id="global.del_lock-object",
    ),
    pytest.param(
        lambda w: global_.trans((("pg2", "g"), erlang.self()), lambda: pg2.delete("g"), None, -1),
        global_.BadArgument,
        r"global:trans/4: retries",
        id="global.trans-negative-retries",
    ),
    # -- gen_server: bad references and timeouts are refused before anything is sent
    pytest.param(
        lambda w: gen_server.call(SERVER, ("set", 99), -1),
        ErlangError,
        r"gen_server:call/3: bad timeout -1",
        id="gen_server.call-negative-timeout",
    ),
    pytest.param(
        lambda w: gen_server.call(SERVER, ("set", 99), NAN),
        ErlangError,
        r"gen_server:call/3: bad timeout nan",
        id="gen_server.call-nan-timeout",
    ),
    pytest.param(
        lambda w: gen_server.call(SERVER, ("set", 99), INF),
        ErlangError,
        r"gen_server:call/3: bad timeout inf",
        id="gen_server.call-inf-timeout",
    ),
    pytest.param(
        lambda w: gen_server.call(SERVER, ("set", 99), "5000"),
        ErlangError,
        r"gen_server:call/3: bad timeout",
        id="gen_server.call-str-timeout",
    ),
    pytest.param(
        lambda w: gen_server.call((SERVER, "n", "x"), "get"),
        ErlangError,
        r"gen_server:call/3: not a server reference",
        id="gen_server.call-triple",
    ),
    pytest.param(
        lambda w: gen_server.cast(42, ("set", 99)),
        ErlangError,
        r"gen_server:cast/2: not a server reference",
        id="gen_server.cast-int",
    ),
    pytest.param(
        lambda w: gen_server.stop(SERVER, "normal", -1),
        ErlangError,
        r"gen_server:stop/3: bad timeout",
        id="gen_server.stop-negative-timeout",
    ),
    pytest.param(
        lambda w: gen_server.stop(SERVER, "normal", NAN),
        ErlangError,
        r"gen_server:stop/3: bad timeout",
        id="gen_server.stop-nan-timeout",
    ),
    pytest.param(
        lambda w: gen_server.stop([SERVER]),
        ErlangError,
        r"gen_server:stop/3: not a server reference",
        id="gen_server.stop-list",
    ),
    pytest.param(
        lambda w: gen_server.get_state(SERVER, "soon"),
        ErlangError,
        r"sys:get_state/2: bad timeout",
        id="gen_server.get_state-str-timeout",
    ),
    pytest.param(
        lambda w: gen_server.suspend(SERVER, True),
        ErlangError,
        r"sys:suspend/2: bad timeout",
        id="gen_server.suspend-bool-timeout",
    ),
    pytest.param(
        lambda w: gen_server.multi_call([erlang.node()], SERVER, ("set", 99), INF),
        ErlangError,
        r"gen_server:multi_call/4: bad timeout",
        id="gen_server.multi_call-inf-timeout",
    ),
    pytest.param(
        lambda w: gen_server.multi_call([erlang.node()], SERVER, ("set", 99), NAN),
        ErlangError,
        r"gen_server:multi_call/4: bad timeout",
        id="gen_server.multi_call-nan-timeout",
    ),
    pytest.param(
        lambda w: gen_server.multi_call((erlang.node(),), SERVER, ("set", 99)),
        TypeError,
        r"gen_server:multi_call/4: guard is_list\(Nodes\)",
        id="gen_server.multi_call-tuple-nodes",
    ),
    pytest.param(
        lambda w: gen_server.abcast([erlang.node()], 42, ("set", 99)),
        ErlangError,
        r"gen_server:abcast/3: bad arguments",
        id="gen_server.abcast-int-name",
    ),
    pytest.param(
        lambda w: gen_server.start(("global", SERVER), Keeper(), {}),
        ErlangError,
        r"gen_server:start_link/4: unsupported name",
        id="gen_server.start-global-name",
    ),
    pytest.param(lambda w: gen_server.reply(42, "x"), TypeError, r"cannot unpack", id="gen_server.reply-int"),
]


@pytest.mark.parametrize(("call", "error", "message"), CASES)
def test_bad_argument_raises_a_clear_error_and_changes_nothing(
    world: dict[str, Any], call: Callable[[dict[str, Any]], Any], error: type[BaseException], message: str
) -> None:
    """The call raises the error named in the table, and the node's state is exactly what it was."""
    before = snapshot()
    processes = sorted(erlang.processes())
    with pytest.raises(error) as info:
        call(world)
    assert re.search(message, str(info.value)), f"unclear message: {info.value}"
    if isinstance(info.value, ErlangError) and not isinstance(info.value, TypeError):
        assert info.value.reason == "badarg"
    assert snapshot() == before
    # A helper process the call started must be gone too.
    wait_until(lambda: sorted(erlang.processes()) == processes, lambda: f"only {processes}, not {erlang.processes()}")
