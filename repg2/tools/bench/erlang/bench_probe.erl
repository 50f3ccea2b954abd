%% The Erlang half of `python -m repg2 bench`: real OTP timed inside real OTP, in the bench's own run.
%% Written for this project; the bench compiles it with erlc and calls it through rpc.
%% Every figure is in microseconds, as floats; each function returns one value per run
%% (a median of that run's samples, or a mean for a batch too fast to time one by one)
%% and, where the Python figure has one, the 99th percentile of all samples.
-module(bench_probe).
-export([connect/1, disconnect/1, echo/0, rtt_remote/3, rtt_local/2, trans/3, pg_join_leave/3]).

%% Connect this node to each of Nodes; fail unless every one answers.
connect(Nodes) ->
    [pong = net_adm:ping(N) || N <- Nodes, N =/= node()],
    ok.

%% Drop the connections to Nodes (pg then sees them go: its scope shrinks).
disconnect(Nodes) ->
    [erlang:disconnect_node(N) || N <- Nodes],
    ok.

now_us() ->
    erlang:monotonic_time(nanosecond) / 1000.

%% Echo {From, X} back to From as X until stop.
echo() ->
    receive
        {From, X} -> From ! X, echo();
        stop -> ok
    end.

%% Round trips to an echo process on Node, timed one by one: {RunMedians, P99}.
rtt_remote(Node, N, Runs) ->
    Echo = spawn(Node, ?MODULE, echo, []),
    Trip = fun() -> Echo ! {self(), x}, receive x -> ok end end,
    Result = per_op(Trip, N, Runs),
    Echo ! stop,
    Result.

%% Round trips to an echo process on this node, timed in batches of N (one is under a microsecond):
%% the mean of each run.
rtt_local(N, Runs) ->
    Echo = spawn(?MODULE, echo, []),
    Trip = fun() -> Echo ! {self(), x}, receive x -> ok end end,
    repeat(Trip, N div 10),
    Means = [begin
                 T0 = now_us(),
                 repeat(Trip, N),
                 (now_us() - T0) / N
             end || _ <- lists:seq(1, Runs)],
    Echo ! stop,
    Means.

%% global:trans/3 with an empty fun on Nodes (this node first): {RunMedians, P99}.
trans(Nodes, N, Runs) ->
    connect(Nodes),
    Id = {{bench, trans}, self()},
    per_op(fun() -> ok = global:trans(Id, fun() -> ok end, Nodes) end, N, Runs).

%% pg:join/2 and pg:leave/2 of one local process in the default scope, on every node this node
%% is connected to: {{JoinMedians, JoinP99}, {LeaveMedians, LeaveP99}}. The scope must run
%% (erl -kernel start_pg true).
pg_join_leave(Group, N, Runs) ->
    Member = spawn(fun() -> receive stop -> ok end end),
    repeat(fun() -> ok = pg:join(Group, Member), ok = pg:leave(Group, Member) end, 20),
    Pairs = [begin
                 T0 = now_us(),
                 ok = pg:join(Group, Member),
                 T1 = now_us(),
                 ok = pg:leave(Group, Member),
                 {T1 - T0, now_us() - T1}
             end || _ <- lists:seq(1, N * Runs)],
    Member ! stop,
    {Joins, Leaves} = lists:unzip(Pairs),
    {summary(Joins, N), summary(Leaves, N)}.

%% Time Fun once per sample, N samples a run after a warm-up: {RunMedians, P99}.
per_op(Fun, N, Runs) ->
    repeat(Fun, max(1, N div 10)),
    Samples = [begin T0 = now_us(), Fun(), now_us() - T0 end || _ <- lists:seq(1, N * Runs)],
    summary(Samples, N).

summary(Samples, N) ->
    {[median(Run) || Run <- chunks(Samples, N)], percentile(Samples, 99)}.

repeat(_Fun, 0) -> ok;
repeat(Fun, K) -> Fun(), repeat(Fun, K - 1).

chunks([], _N) -> [];
chunks(List, N) when length(List) =< N -> [List];
chunks(List, N) ->
    {Run, Rest} = lists:split(N, List),
    [Run | chunks(Rest, N)].

median(Values) ->
    Sorted = lists:sort(Values),
    Len = length(Sorted),
    case Len rem 2 of
        1 -> lists:nth(Len div 2 + 1, Sorted);
        0 -> (lists:nth(Len div 2, Sorted) + lists:nth(Len div 2 + 1, Sorted)) / 2
    end.

%% Nearest rank, as the Python side's percentile().
percentile(Values, Q) ->
    Sorted = lists:sort(Values),
    Len = length(Sorted),
    lists:nth(min(Len, max(1, round(Q / 100 * Len))), Sorted).
