"""TLS between the parties: the key files MPyC's `--ssl` expects, made by
`musketeer mpc keys`, and a check of one party's files before it connects.

MPyC (0.11, `Runtime.start`) reads, relative to the working directory:
`.config/party_{i}.crt`, `.config/party_{i}.key` (party i's certificate and
private key) and `.config/mpyc_ca.crt` (the CA that signed every party's
certificate); a client also checks that party j's certificate is issued to
the host name "MPyC party {j}". The pip package ships no generator (MPyC's
own script lives in its source demos and needs pyOpenSSL/cryptography), so
we drive the `openssl` command line.

Layout written by `musketeer mpc keys --out DIR`:

    DIR/ca/mpyc_ca.crt, DIR/ca/mpyc_ca.key     # keep the CA key offline
    DIR/<party>/mpyc_ca.crt, party_{i}.crt, party_{i}.key   # copy to that party

Why check before connecting: a wrong or missing file would otherwise show
up as MPyC retrying the connection forever (it swallows every connect
error), so the party would only stop at the peer timeout with a vague
message. The check is a TLS handshake in memory between this party's
certificate and the CA it trusts, so it catches a missing file, a key that
does not match the certificate, a certificate from another CA and a
certificate made for another party index, each as one line (exit 2).
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import tempfile
from typing import Self

from musketeer.mpc.config import ConfigError, PartiesConfig

CA_CERT = "mpyc_ca.crt"
CA_KEY = "mpyc_ca.key"
DAYS = "3650"

_PARTY_EXT = """basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


class TLSError(ConfigError):
    """Key files that cannot secure the connections between the parties."""


def party_files(index: int) -> tuple[str, str]:
    """MPyC's names for party `index`'s certificate and key."""
    return f"party_{index}.crt", f"party_{index}.key"


def host_name(index: int) -> str:
    """The name MPyC's clients expect in party `index`'s certificate."""
    return f"MPyC party {index}"


def _openssl(args: list[str], cwd: str) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        raise TLSError("musketeer mpc keys needs the openssl command (not found on PATH)")
    proc = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise TLSError(f"openssl {args[0]} failed: {last}")


def _ec_key(path: str, cwd: str) -> None:
    _openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path], cwd)
    os.chmod(os.path.join(cwd, path), 0o600)


def make_keys(config: PartiesConfig, out_dir: str, *, force: bool = False) -> dict[str, str]:
    """A fresh CA and one certificate per party (in config order, which is
    MPyC's party index). Returns party name -> the directory to give it.
    An existing CA is kept unless `force`: replacing it would silently
    lock out every party still holding the old files."""
    ca_dir = os.path.join(out_dir, "ca")
    if os.path.exists(os.path.join(ca_dir, CA_KEY)) and not force:
        raise TLSError(f"{out_dir} already holds keys (a CA in {ca_dir}); use --force to replace them all")
    os.makedirs(ca_dir, exist_ok=True)
    _ec_key(CA_KEY, ca_dir)
    _openssl(["req", "-x509", "-new", "-key", CA_KEY, "-out", CA_CERT, "-days", DAYS,
              "-subj", "/CN=MPyC CA (musketeer mpc keys)"], ca_dir)
    out: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        ext = os.path.join(tmp, "party.ext")
        with open(ext, "w", encoding="utf-8") as f:
            f.write(_PARTY_EXT)
        for i, name in enumerate(config.names):
            crt, key = party_files(i)
            pdir = os.path.join(out_dir, name)
            os.makedirs(pdir, exist_ok=True)
            _ec_key(key, pdir)
            csr = os.path.join(tmp, f"party_{i}.csr")
            _openssl(["req", "-new", "-key", key, "-out", csr, "-subj", f"/CN={host_name(i)}"], pdir)
            _openssl(["x509", "-req", "-in", csr, "-CA", os.path.join(ca_dir, CA_CERT),
                      "-CAkey", os.path.join(ca_dir, CA_KEY), "-CAcreateserial",
                      "-CAserial", os.path.join(tmp, "ca.srl"), "-out", crt, "-days", DAYS,
                      "-extfile", ext], pdir)
            shutil.copyfile(os.path.join(ca_dir, CA_CERT), os.path.join(pdir, CA_CERT))
            out[name] = pdir
    return out


def key_dir(keys: str | None, config: PartiesConfig, party: str) -> str:
    """Where party's files are: `keys/<party>/` when it exists (the layout
    `mpc keys` writes), else `keys` itself; default `<config dir>/mpc_keys`."""
    base = keys if keys is not None else os.path.join(config.base_dir, "mpc_keys")
    sub = os.path.join(base, party)
    return sub if os.path.isdir(sub) else base


def check_party_keys(directory: str, index: int, party: str) -> tuple[str, str, str]:
    """Validate party `index`'s files in `directory`; returns (crt, key, ca)."""
    crt, key = (os.path.join(directory, f) for f in party_files(index))
    ca = os.path.join(directory, CA_CERT)
    for path in (crt, key, ca):
        if not os.path.isfile(path):
            raise TLSError(f"party {party!r}: TLS file {path} is missing (make keys with `musketeer mpc keys`)")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        server.load_cert_chain(crt, keyfile=key)
    except ssl.SSLError as e:
        raise TLSError(f"party {party!r}: {os.path.basename(key)} does not fit {crt} ({e.reason or e})") from None
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    try:
        client.load_verify_locations(cafile=ca)
    except ssl.SSLError as e:
        raise TLSError(f"party {party!r}: {ca} is not a CA certificate ({e.reason or e})") from None
    try:
        _handshake(client, server, host_name(index))
    except ssl.SSLCertVerificationError as e:
        raise TLSError(f"party {party!r}: {crt} is not valid for MPyC party {index} under {ca} "
                       f"({e.verify_message}); keys from another `mpc keys` run or another party?") from None
    return crt, key, ca


def _handshake(client: ssl.SSLContext, server: ssl.SSLContext, hostname: str) -> None:
    """A TLS handshake between two contexts through memory buffers."""
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(c_in, c_out, server_hostname=hostname)
    s = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    for _ in range(20):
        for name, end in (("c", c), ("s", s)):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if done["c"] and done["s"]:
            return
    raise TLSError("TLS self-check did not complete")


class MPyCConfigDir:
    """MPyC opens its key files as `.config/...` relative to the working
    directory while it connects: copy this party's files into a private
    temporary `.config` and work there for exactly that long."""

    def __init__(self, files: tuple[str, str, str], index: int) -> None:
        self.files, self.index = files, index
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._cwd = ""

    def __enter__(self) -> Self:
        self._tmp = tempfile.TemporaryDirectory(prefix="musketeer-mpc-tls-")
        cfg = os.path.join(self._tmp.name, ".config")
        os.makedirs(cfg)
        crt, key, ca = self.files
        names = (*party_files(self.index), CA_CERT)
        for src, name in zip((crt, key, ca), names):
            shutil.copyfile(src, os.path.join(cfg, name))
        os.chmod(os.path.join(cfg, names[1]), 0o600)
        self._cwd = os.getcwd()
        os.chdir(self._tmp.name)
        return self

    def __exit__(self, *exc: object) -> None:
        os.chdir(self._cwd)
        if self._tmp is not None:
            self._tmp.cleanup()
