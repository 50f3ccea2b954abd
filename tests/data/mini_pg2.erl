%% A stand-in for pg2.erl, written for the xref tests: the same module name
%% and function heads (names and arities) as OTP 18.3's pg2.erl, with
%% trivial bodies, plus one function RePy2 does not translate. It exercises
%% what the xref reader must handle: comments, strings with parentheses,
%% character literals, guards, multi-clause functions, binaries.
-module(pg2).
-export([start_link/0, start/0, create/1, delete/1, join/2, leave/2]).

start_link() -> ok.
start() -> ok.
create(_Name) -> ok.   % a comment with (parens, and, commas)
delete(_Name) -> "a string ( with , commas )".
join(_Name, Pid) when is_pid(Pid) -> ok.
leave(_Name, Pid) when is_pid(Pid) -> $(.
get_members(_Name) -> [].
get_local_members(_Name) -> [].
which_groups() -> [].
get_closest_pid(_Name) -> none.
init([]) -> {ok, state}.
handle_call({create, _}, _From, S) -> {reply, ok, S};
handle_call(_Request, _From, S) -> {noreply, S}.
handle_cast(_, S) -> {noreply, S}.
handle_info(_, S) -> {noreply, S}.
terminate(_Reason, _S) -> ok.
store(_List) -> ok.
assure_group(_Name) -> true.
delete_group(_Name) -> ok.
member_died(_Ref) -> ok.
join_group(_Name, _Pid) -> ok.
leave_group(_Name, _Pid) -> ok.
all_members() -> [].
group_members(<<_:8, _/binary>>) -> [];
group_members(_Name) -> [].
local_group_members(_Name) -> [].
member_in_group(_Pid, _Name) -> [].
member_groups(_Pid) -> [].
all_groups() -> [].
ensure_started() -> ok.
kill_monitor_proc(_RPid, _Pid) -> true.
do_monitor(Pid) -> {Pid, make_ref()}.
not_in_repy2({a, b}, [c, d], "e, f") -> nothing.
