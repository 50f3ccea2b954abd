"""Why a node cannot be reached (``repg2.tools.reach``): each failure of the way named, and explained in one line.

The shell's ``ping`` and the pre-flight run these against real nodes
(``test_shell.py``, ``test_preflight.py``, and across hosts in
``test_netns.py``); here are the failures a single machine can stage
itself: a name that is no node name, a port mapper port held by another
program, a port mapper that breaks off its answers, and each kind of
failed connect.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator

import pytest
from support import NOT_A_PORT_MAPPER, fake_port_mapper, free_port

from repg2.tools import reach

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def answering(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """Make ERL_EPMD_PORT a port where each connection gets the next of the replies the test puts in the list."""
    replies: list[bytes] = []
    with fake_port_mapper(monkeypatch, replies):
        yield replies


def test_a_node_name_is_name_at_host() -> None:
    """split takes alive@host only; a missing or doubled @ is a ValueError naming the node."""
    assert reach.split("a@127.0.0.1") == ("a", "127.0.0.1")
    for bad in ("nohost", "@host", "a@", "a@b@c"):
        with pytest.raises(ValueError, match="not a node name"):
            reach.split(bad)
    with pytest.raises(ValueError, match="not a node name"):
        reach.probe("nohost")


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (socket.gaierror(-2, "Name or service not known"), "bad_host"),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "refused"),
        (TimeoutError("timed out"), "timeout"),
        (OSError(errno.EHOSTUNREACH, "No route to host"), "unreachable"),
        (OSError(errno.ENETUNREACH, "Network is unreachable"), "unreachable"),
        (OSError(errno.EACCES, "Permission denied"), "other"),
    ],
)
def test_each_failed_connect_is_named(error: OSError, kind: str) -> None:
    """A failed connect is named by what failed: the host's name, a refusal, a timeout, no route, or something else."""
    assert reach._failure(error) == kind


def test_a_port_mapper_port_held_by_another_program(answering: list[bytes]) -> None:
    """What answers on the port mapper port without speaking epmd is 'not_a_mapper', and explained so."""
    answering.append(NOT_A_PORT_MAPPER)
    found = reach.probe("teacher@127.0.0.1")
    assert found.kind == "not_a_mapper"
    diagnosis, fix = reach.explain("teacher@127.0.0.1", found)
    assert diagnosis.startswith(f"what answers at 127.0.0.1:{found.mapper_port} is not a port mapper")
    assert "--epmd-port" in fix


def test_no_such_node_when_the_list_of_names_fails_too(answering: list[bytes]) -> None:
    """A port mapper that knows no such node and then fails to list its names: no_such_node, 'none' registered."""
    answering += [b"w\x01", b"\x00"]  # PORT2_RESP noport, then a NAMES reply too short to be one
    found = reach.probe("teacher@127.0.0.1")
    assert (found.kind, found.names) == ("no_such_node", [])
    diagnosis, _fix = reach.explain("teacher@127.0.0.1", found)
    assert diagnosis == "no node named 'teacher' runs on 127.0.0.1 (nodes registered there: none)"


def test_explanations_of_a_bad_host_and_of_a_handshake_that_never_ends() -> None:
    """A host that does not resolve says to use the IP address; a node that accepts but never shakes hands is frozen."""
    diagnosis, fix = reach.explain("t@nowhere.invalid", ("bad_host", "nowhere.invalid", 4369, None, None, "unknown"))
    assert diagnosis == "cannot resolve host 'nowhere.invalid': unknown"
    assert "use the IP address" in fix
    answers = reach.Probe("answers", "127.0.0.1", 4369, 4370)
    diagnosis, _fix = reach.explain("t@127.0.0.1", answers, handshake_timed_out=True)
    assert "did not finish the handshake in time" in diagnosis
    diagnosis, _fix = reach.explain("t@127.0.0.1", answers)
    assert "refused the handshake: its cookie is not ours" in diagnosis


def test_no_port_mapper_on_the_host_is_mapper_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing listening on the port mapper port is 'mapper_refused': no node there, another port, or a firewall."""
    monkeypatch.setenv("ERL_EPMD_PORT", str(free_port()))
    found = reach.probe("teacher@127.0.0.1")
    assert found.kind == "mapper_refused"
    diagnosis, fix = reach.explain("teacher@127.0.0.1", found)
    assert diagnosis.startswith(f"no port mapper answers at 127.0.0.1:{found.mapper_port} (connection refused)")
    assert "--epmd-port" in fix


@pytest.mark.parametrize(
    ("kind", "detail", "said"),
    [
        ("mapper_timeout", "", "does not answer (timed out)"),
        ("unreachable", "No route to host", "does not answer (unreachable: No route to host)"),
        ("mapper_other", "Permission denied", "does not answer (Permission denied)"),
        ("port_timeout", "timed out", "is registered at port 4370 but that port does not answer (timed out)"),
    ],
)
def test_each_silent_failure_is_explained(kind: str, detail: str, said: str) -> None:
    """A port mapper that does not answer, no route, another error, or a node port that does not answer: each its own line."""
    diagnosis, fix = reach.explain("t@10.1.2.3", reach.Probe(kind, "10.1.2.3", 4369, 4370, None, detail))
    assert said in diagnosis
    assert fix
