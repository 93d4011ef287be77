"""The STP's padded gather (`mpc/secure/gather.py`) with 3 MPyC parties as
3 processes: exact rows for indices that repeat, outnumber the rows, or are
absent, and each role receives only what the leakage report says (one-time
padded values, random positions), never the data or the index."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARTIES = ("p0", "p1", "p2")  # p0 is the STP; p1 draws the pads; p2 answers positions
X = np.array([[3.5, -7.0, 11.25, 0.0, 42.0], [1.0, 0.0, 1.0, 1.0, 0.0]])  # held by p1
CASES = {
    "repeats": np.array([4, 0, 4, 2, 4, 0]),
    "more_than_rows": np.array([1, 1, 3, 0, 2, 2, 4, 1]),  # k = 8 > n = 5
    "permutation": np.array([2, 0, 4, 1, 3]),
    "empty": np.array([], dtype=np.int64),
}


def _party_main(index: int, ports: str, out_path: str) -> None:
    sys.path.insert(0, ROOT)
    argv = [sys.argv[0], "--no-log", "-I", str(index)]
    for port in ports.split(","):
        argv += ["-P", f"127.0.0.1:{port}"]
    sys.argv = argv
    from mpyc.runtime import mpc

    from musketeer.mpc.secure.gather import Roles, gather
    from musketeer.mpc.secure.relation import Channel
    from musketeer.mpc.split import gather_labels, gather_roles

    me = PARTIES[index]
    sf = mpc.SecFxp(64, 32)
    roles = Roles("p0", *gather_roles(PARTIES, "p0"), gather_labels("%9"))
    results: dict[str, list] = {}
    chan = Channel(mpc, PARTIES, me)

    async def main() -> None:
        await mpc.start()
        for name, idx in CASES.items():
            x = mpc.input(sf.array(X if me == "p1" else np.zeros(X.shape)), senders=1)
            got = await gather(mpc, sf, chan, x, idx if me == "p0" else None, len(idx), roles)
            assert got.shape == (X.shape[0], len(idx))
            results[name] = np.asarray(await mpc.output(got), dtype=float).tolist() if len(idx) else []
        await mpc.shutdown()

    mpc.run(main())
    received = [[label, [int(v) for v in np.asarray(value).ravel()]] for label, value in chan.received]
    with open(out_path, "w") as f:
        json.dump({"results": results, "received": received}, f)


@pytest.fixture(scope="module")
def gathered(tmp_path_factory):
    from musketeer.mpc.launch import free_ports
    from tests.mpc_helpers import run_parties

    ports = ",".join(map(str, free_ports(3)))
    return run_parties(__file__, 3, [ports], tmp_path_factory.mktemp("gather"), timeout=300)


@pytest.mark.parametrize("case", list(CASES))
def test_gather_returns_the_indexed_rows(gathered, case):
    want = X[:, CASES[case]]
    for out in gathered:
        got = np.array(out["results"][case]).reshape(want.shape)
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_each_role_receives_only_pads_and_random_positions(gathered):
    from musketeer.mpc.split import gather_labels

    labels = gather_labels("%9")
    stp, pad, third = (out["received"] for out in gathered)
    assert {label for label, _ in stp} == {labels["padded"], labels["permutation"]}
    assert pad == []  # the pad party learns nothing
    assert {label for label, _ in third} == {labels["pads"], labels["positions"]}
    scaled = {round(v * 2 ** 32) for v in X.ravel()}  # the field values of X
    for label, values in stp + third:
        if "one-time" in label:
            assert not set(values) & scaled  # padded, never the data itself
    positions = [values for label, values in third if label == labels["positions"]]
    # two fetches per gather, each asking for k distinct positions
    assert len(positions) == 2 * sum(1 for idx in CASES.values() if len(idx))
    for values in positions:
        assert len(set(values)) == len(values)


@pytest.mark.parametrize("parties,want", [
    (("a", "b"), None),  # no third party
    (("a", "b", "c"), ("b", "c")),
    (("a", "b", "c", "d"), ("b", "c")),  # MPyC threshold still 1
    (("a", "b", "c", "d", "e"), None),  # threshold 2: two parties may collude, so the one-hot
])
def test_gather_roles_follow_the_collusion_threshold(parties, want):
    from musketeer.mpc.split import gather_roles

    assert gather_roles(parties, "a") == want


if __name__ == "__main__":
    asyncio.set_event_loop(asyncio.new_event_loop())
    _party_main(int(sys.argv[1]), sys.argv[2], sys.argv[3])
