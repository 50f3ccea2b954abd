%% A stand-in for pg.erl, written for the xref tests: the module name and a
%% few function heads of OTP 25.2.3's pg.erl with trivial bodies, plus one
%% function RePy2 does not translate.
-module(pg).
-export([start_link/0, join/2, get_members/1]).

start_link() -> ok.
join(_Group, PidOrPids) when is_pid(PidOrPids); is_list(PidOrPids) -> ok.
get_members(_Group) -> [].
not_in_repg2() -> ok.
