%% Helpers that RePy2's interop tests run on real Erlang/OTP nodes, through rpc.
%% Written for this project; compiled by tests/test_interop.py with erlc.
-module(repg2_probe).
-export([eval/1, terms/0, echo_all/2, spawn_waiter/0, spawn_monitor_of/2, spawn_linker/2, register_waiter/1,
         collect/1, send_each/2, self_node/0]).

%% Evaluate an Erlang expression sequence given as a binary; return its value.
eval(Text) when is_binary(Text) ->
    {ok, Tokens, _} = erl_scan:string(binary_to_list(Text)),
    {ok, Exprs} = erl_parse:parse_exprs(Tokens),
    {value, Value, _} = erl_eval:exprs(Exprs, erl_eval:new_bindings()),
    Value.

%% The table of terms the round trip checks: one of each kind the mapping has.
terms() ->
    Ref = make_ref(),
    [ok, true, false, undefined, 'ök', '原子', 'with space', '',
     0, 255, 256, -1, 134217727, 134217728, -134217729, 2147483647, 4294967296,
     18446744073709551616, -18446744073709551616, 1 bsl 1000,
     0.5, -1.25e100, 3.0,
     {}, {a}, {a, {b, {c, [d]}}}, [], [1, 2, 3], "a string", [1 | improper],
     <<>>, <<"binary">>, <<0, 255, 128>>,
     #{}, #{a => 1}, #{<<"k">> => [1], {1, 2} => x, 3 => 4.0},
     self(), Ref, fun erlang:node/0,
     lists:seq(1, 300), list_to_tuple(lists:seq(1, 300))].

%% Send each term to {Name, Node} as {self(), Term}; collect the echoes; return the ones that differ (=/=).
echo_all(Name, Node) ->
    Terms = terms(),
    Bad = [{T, E} || T <- Terms, E <- [echo(Name, Node, T)], E =/= T],
    {length(Terms), Bad}.

echo(Name, Node, Term) ->
    {Name, Node} ! {self(), Term},
    receive {echoed, Got} -> Got after 10000 -> timeout end.

%% A process that waits for ever (until killed); return its pid.
spawn_waiter() ->
    spawn(fun() -> receive never -> ok end end).

register_waiter(Name) ->
    Pid = spawn_waiter(),
    true = register(Name, Pid),
    Pid.

%% Spawn a process that monitors Target and reports the 'DOWN' to ReportTo as {down, Reason}.
%% It says monitoring only once Target's node has set the monitor up (see settled/1).
spawn_monitor_of(Target, ReportTo) ->
    spawn(fun() ->
                  Ref = erlang:monitor(process, Target),
                  settled(Target),
                  ReportTo ! {monitoring, self()},
                  receive {'DOWN', Ref, process, _, Reason} -> ReportTo ! {down, Reason} end
          end).

%% Spawn a process that traps exits, links to Target, says linked, and reports its exit as {erl_saw, Reason}.
%% It says linked only once Target's node has set the link up (see settled/1).
spawn_linker(Target, ReportTo) ->
    spawn(fun() ->
                  process_flag(trap_exit, true),
                  link(Target),
                  settled(Target),
                  ReportTo ! linked,
                  receive {'EXIT', Target, Reason} -> ReportTo ! {erl_saw, Reason} end
          end).

%% A remote monitor or link is a signal on its way when monitor/2 or link/1 returns: a
%% test that killed Target at once could get noproc instead of the kill's reason. A call
%% to Target's node travels behind that signal on the same connection, so its answer
%% means the node has handled the signal.
settled({_Name, Node}) -> settled_on(Node);
settled(Pid) when is_pid(Pid) -> settled_on(node(Pid)).

settled_on(Node) when Node =:= node() -> ok;
settled_on(Node) -> Node = rpc:call(Node, erlang, node, []), ok.

%% Start a process registered as Name that keeps every message; collect(Name) returns them.
collect(Name) ->
    case whereis(Name) of
        undefined ->
            Pid = spawn(fun() -> keep([]) end),
            register(Name, Pid),
            [];
        Pid ->
            Pid ! {get, self()},
            receive {kept, Msgs} -> Msgs after 5000 -> timeout end
    end.

keep(Msgs) ->
    receive
        {get, From} -> From ! {kept, lists:reverse(Msgs)}, keep(Msgs);
        Msg -> keep([Msg | Msgs])
    end.

%% Send Msg to the process registered as Name on each node.
send_each(Name, Nodes) ->
    [{Name, N} ! {from, node()} || N <- Nodes],
    ok.

self_node() -> node().
