"""Anchoring the decision log: sign its head after each write, export the signed head.

`sign_head` is the one call for whoever writes decisions (the CLI after `gates evaluate` and
`revive`, the server after each live evaluation). It refuses to sign a chain that does not
follow from the last signed head, so a signature never blesses tampering done since.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from alphatrace.errors import GovernanceError
from alphatrace.governance import audit, journal, signing, upgrade
from alphatrace.store import Store


def configured_key() -> Path | None:
    """The signing key named by $ALPHATRACE_SIGNING_KEY, if any."""
    v = os.environ.get(signing.ENV_KEY)
    return Path(v) if v else None


def configured_heads() -> Path | None:
    """The heads file named by $ALPHATRACE_HEADS_FILE, if any."""
    v = os.environ.get(signing.ENV_HEADS)
    return Path(v) if v else None


def _check_tail(store: Store) -> tuple[int, str]:
    """The chain's head, after checking every record since the newest signed head still links
    to it and matches its hash (the whole chain when nothing was signed yet)."""
    con = store.con
    signed = signing.stored(con)
    last = max(signed, key=lambda sh: sh.seq) if signed else None
    recs = journal.read_records(con, since_seq=last.seq if last else None)
    if not recs:
        raise GovernanceError("the decision log is empty: nothing to sign")
    if last is None:  # the first signature: the whole chain, and every decision in it
        found = audit.check_chain(recs, journal.head(con))
        found += audit.check_consistency(con, audit.chain_order(recs), set())
        if found:
            raise GovernanceError(f"the decision log has {len(found)} problem(s), the first at "
                                  f"seq {found[0]['seq']} ({found[0]['kind']}): refusing to "
                                  "sign; run `alphatrace audit verify`")
    if last is not None and (recs[0]["seq"], recs[0]["hash"]) != (last.seq, last.hash):
        raise GovernanceError(f"the chain no longer contains the head signed at {last.signed_at} "
                              f"(seq {last.seq}): refusing to sign; run `alphatrace audit verify`")
    prev = recs[0]["prev_hash"]
    for i, r in enumerate(recs):
        expected_seq = recs[0]["seq"] + i
        if (r["seq"] != expected_seq or r["prev_hash"] != prev
                or journal.record_hash(r) != r["hash"]):
            raise GovernanceError(f"record {r['seq']} does not follow from the chain before it: "
                                  "refusing to sign; run `alphatrace audit verify`")
        prev = r["hash"]
    return int(recs[-1]["seq"]), str(recs[-1]["hash"])


def sign_head(store: Store, key: Ed25519PrivateKey | Path, heads_file: Path | None = None, *,
              at: dt.datetime | None = None) -> signing.SignedHead:
    """Sign the chain's current head with `key` (or the key file), keep the signed head in the
    store and append it to `heads_file`. Runs its own transaction: call it after the write's
    commit. Signing an already signed head again with the same key adds nothing (and exports
    it if the file lacks it). `at` is signed_at (default: the wall clock)."""
    k = signing.load_private(key) if isinstance(key, Path) else key
    kid = signing.key_id(k.public_key())
    with store.transaction():
        upgrade.ensure_current(store)
        seq, hash_ = _check_tail(store)
        same = [sh for sh in signing.stored(store.con)
                if (sh.seq, sh.hash, sh.key_id) == (seq, hash_, kid)]
        sh = same[0] if same else signing.sign(k, seq, hash_, at or journal.now())
        if not same:
            signing.insert(store.con, sh)
    if heads_file is not None and not (same and _exported(heads_file, sh)):
        signing.append_line(heads_file, sh)
    return sh


def _exported(path: Path, sh: signing.SignedHead) -> bool:
    return path.exists() and any(e == sh for _, e in signing.read_file(path))


def sign_if_configured(store: Store, key: Path | None = None,
                       heads_file: Path | None = None) -> signing.SignedHead | None:
    """`sign_head` with the key and heads file given, else the configured ones; None when no
    key is given or configured."""
    key = key or configured_key()
    if key is None:
        return None
    return sign_head(store, key, heads_file or configured_heads())
