"""The ``vizier`` provider end to end, against a local HTTPS stand-in for VizieR.

The stand-in listens on 127.0.0.1 with a self-signed certificate made by the ``openssl`` CLI and
trusted through ``REQUESTS_CA_BUNDLE`` (verification stays on). It answers astroquery's POST to
``/viz-bin/votable`` the way VizieR does: it reads the ASU script (``-source``, ``-c``,
``-c.rd``/``-c.rm``/``-c.rs``, ``-out``, ``-out.max``), selects the simulator's reference rows
in the cone and sends a VOTable whose TABLE is named like VizieR's (``I/355/gaiadr3``,
``II/246/out``). Nothing of astroquery is mocked; the provider is pointed at the stand-in with
its ``server`` option (astroquery's ``vizier_server``).
"""

from __future__ import annotations

import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import votable
from astropy.io.votable.tree import Info, VOTableFile
from astropy.table import Table

from vircamframe.errors import RefcatError
from vircamframe.refcat import GAIA_DR3, TWOMASS_PSC, cone, read_catalog
from vircamframe.refcat.vizier import cache_key, query_vizier

CENTRE = (280.03217, -59.95731)  # inside the simulated science tile at (280, -60), off the key grid
FAST = {"retries": 0, "timeout": 5.0, "backoff": 0.01}


# --------------------------------------------------------------------------------------------
# the stand-in VizieR


class StandIn:
    """What the stand-in serves and what it was asked.

    Attributes
    ----------
    requests : list of dict
        Each POST: ``path``, ``params`` (the ASU script as a dict), ``headers``.
    fail : list of str
        Modes for the next requests, used up in order: ``"503"`` (Service Unavailable),
        ``"close"`` (drop the connection without an answer), ``"stall"`` (answer nothing for
        ``stall_s`` seconds).
    answer : tuple or None
        ``(status, content type, body)`` sent instead of the catalogue rows.
    """

    def __init__(self, catalogues: dict[str, tuple], port: int):
        self.catalogues = catalogues
        self.port = port
        self.requests: list[dict] = []
        self.fail: list[str] = []
        self.answer: tuple[int, str, bytes] | None = None
        self.stall_s = 1.0

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"


def _script(body: str) -> dict[str, str | None]:
    """astroquery's ASU script (``key=value`` lines) as a dict."""
    params: dict[str, str | None] = {}
    for line in body.splitlines():
        key, sep, value = line.partition("=")
        params[key] = value if sep else None
    return params


def _votable(infos: list[Info], resource_name: str | None = None, table: Table | None = None,
             table_name: str | None = None) -> bytes:
    """A VOTable as VizieR writes one: RESOURCE named after the catalogue, TABLE after the table."""
    if table is None:
        vo = VOTableFile()
    else:
        vo = votable.from_table(table)
        resource = vo.resources[0]
        resource.ID = "yCat_" + resource_name.replace("/", "_")
        resource.tables[0].name = table_name
        resource.tables[0].ID = table_name.replace("/", "_")
    vo.infos.extend(infos)
    buf = BytesIO()
    vo.to_xml(buf)
    xml = buf.getvalue()
    if table is not None:  # astropy does not write a RESOURCE's name; VizieR does
        rid = f'ID="yCat_{resource_name.replace("/", "_")}"'.encode()
        xml = xml.replace(b"<RESOURCE " + rid, b"<RESOURCE " + rid + f' name="{resource_name}"'.encode(), 1)
    return xml


def _select(stand_in: StandIn, params: dict) -> bytes:
    """VizieR's answer to a cone query of ``params``."""
    source = params.get("-source")
    if source not in stand_in.catalogues:
        return _votable([Info(ID="Error", name="Error", value=f"No catalogue or table {source} found"),
                         Info(name="QUERY_STATUS", value="ERROR")])
    spec, resource_name, table_name, table = stand_in.catalogues[source]
    match = re.fullmatch(r"([+-]?[\d.]+)([+-][\d.]+)", params["-c"])
    centre = SkyCoord(float(match.group(1)) * u.deg, float(match.group(2)) * u.deg)
    scales = (("-c.rd", 1.0), ("-c.rm", 1 / 60), ("-c.rs", 1 / 3600))
    radius = next(float(params[k]) * scale for k, scale in scales if k in params)
    rows = table[SkyCoord(table[spec.ra], table[spec.dec], unit="deg").separation(centre) <= radius * u.deg]
    if params.get("-out"):
        rows = rows[params["-out"].split(",")]
    if params.get("-out.max", "unlimited") != "unlimited":
        rows = rows[: int(params["-out.max"])]
    status = Info(name="QUERY_STATUS", value="OK")
    if len(rows) == 0:  # VizieR sends no TABLE for an empty cone
        return _votable([status])
    return _votable([status], resource_name, rows, table_name)


def _handler(stand_in: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            params = _script(body)
            stand_in.requests.append({"path": self.path, "params": params, "headers": dict(self.headers)})
            mode = stand_in.fail.pop(0) if stand_in.fail else None
            if mode == "close":
                self.close_connection = True
                return
            if mode == "stall":
                time.sleep(stand_in.stall_s)
                self.close_connection = True
                return
            if mode == "503":
                self.send_error(503, "Service Unavailable")
                return
            if self.path != "/viz-bin/votable":
                self.send_error(404)
                return
            status, ctype, payload = stand_in.answer or (200, "text/xml", _select(stand_in, params))
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):  # keep the test output quiet
            pass

    return Handler


@pytest.fixture(scope="module")
def catalogues(tmp_path_factory) -> dict[str, tuple]:
    """The simulator's reference tables, served per VizieR source: (spec, RESOURCE, TABLE, rows)."""
    from vircamframe.simulate import simulate

    out = tmp_path_factory.mktemp("vizier_sim")
    result = simulate(out, preset="tiny", seed=1, what="science")
    return {
        GAIA_DR3.vizier_id: (GAIA_DR3, "I/355", "I/355/gaiadr3",
                             read_catalog(result.refcats["gaia"], GAIA_DR3)),
        TWOMASS_PSC.vizier_id: (TWOMASS_PSC, "II/246", "II/246/out",
                                read_catalog(result.refcats["twomass"], TWOMASS_PSC)),
    }


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (``openssl req -x509``)."""
    openssl = shutil.which("openssl") or "/usr/bin/openssl"
    if not Path(openssl).exists():
        pytest.skip("the openssl command is not available")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


@pytest.fixture
def vizier(catalogues, certificate, monkeypatch):
    """The stand-in, serving in a thread; requests trusts its certificate."""
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), None)
    stand_in = StandIn(catalogues, server.server_address[1])
    server.RequestHandlerClass = _handler(stand_in)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield stand_in
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _sorted(table: Table, spec) -> Table:
    return table[np.lexsort((np.asarray(table[spec.dec]), np.asarray(table[spec.ra])))]


def _expected(catalogues, spec, ra, dec, radius) -> Table:
    return _sorted(cone(catalogues[spec.vizier_id][3], spec, ra, dec, radius), spec)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------------------------
# the tests


@pytest.mark.parametrize("spec", [GAIA_DR3, TWOMASS_PSC], ids=["gaia", "2mass"])
def test_query_returns_the_rows_in_the_cone_with_vizier_names(vizier, catalogues, tmp_path, spec):
    ra, dec = CENTRE
    radius = 0.12
    got = query_vizier(ra, dec, radius, role=spec.role, server=vizier.host, cache_dir=tmp_path, **FAST)
    got = _sorted(got, spec)
    expected = _expected(catalogues, spec, ra, dec, radius)

    assert len(expected) > 20
    assert len(got) == len(expected)
    assert got.colnames == list(spec.required)
    np.testing.assert_allclose(got[spec.ra], expected[spec.ra], rtol=0, atol=1e-9)
    np.testing.assert_allclose(got[spec.dec], expected[spec.dec], rtol=0, atol=1e-9)
    assert got[spec.ra].unit == u.deg and got[spec.dec].unit == u.deg
    if spec is GAIA_DR3:
        assert got["pmRA"].unit == u.mas / u.yr and got["e_RA_ICRS"].unit == u.mas
        np.testing.assert_allclose(got["Gmag"], expected["Gmag"], rtol=1e-6)
    else:
        assert got["Kmag"].unit == u.mag
        assert list(got["Qflg"]) == list(expected["Qflg"])

    # one request, astroquery's, carrying the catalogue, a centre and a radius that cover the cone
    assert len(vizier.requests) == 1
    request = vizier.requests[0]
    params = request["params"]
    assert request["path"] == "/viz-bin/votable"
    assert "astroquery" in request["headers"]["User-Agent"]
    assert params["-source"] == spec.vizier_id
    assert params["-out"] == ",".join(spec.required)
    assert params["-out.max"] == "unlimited"
    key = cache_key(ra, dec, radius)
    sent = re.fullmatch(r"([\d.]+)([+-][\d.]+)", params["-c"])
    assert (float(sent.group(1)), float(sent.group(2))) == pytest.approx((key.ra, key.dec), abs=1e-9)
    assert abs(key.ra - ra) <= 5e-5 and abs(key.dec - dec) <= 5e-5
    assert float(params["-c.rd"]) == pytest.approx(key.radius, abs=1e-12)
    assert radius <= key.radius <= radius + 2e-4


def test_disk_cache_serves_covered_cones_without_network(vizier, catalogues, tmp_path):
    ra, dec = CENTRE
    first = query_vizier(ra, dec, 0.12, role="astrometric", server=vizier.host, cache_dir=tmp_path, **FAST)
    assert len(vizier.requests) == 1
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [cache_key(ra, dec, 0.12).filename(GAIA_DR3)]  # one file, no temporary left over

    again = query_vizier(ra, dec, 0.12, role="astrometric", server=vizier.host, cache_dir=tmp_path, **FAST)
    inner = query_vizier(ra + 0.03, dec - 0.02, 0.05, role="astrometric", server=vizier.host,
                         cache_dir=tmp_path, **FAST)
    assert len(vizier.requests) == 1  # both from the cache
    assert again.colnames == first.colnames
    for column in first.colnames:
        np.testing.assert_array_equal(_sorted(again, GAIA_DR3)[column], _sorted(first, GAIA_DR3)[column])
    assert again["pmRA"].unit == first["pmRA"].unit
    expected = _expected(catalogues, GAIA_DR3, ra + 0.03, dec - 0.02, 0.05)
    assert 0 < len(inner) == len(expected) < len(first)
    np.testing.assert_allclose(_sorted(inner, GAIA_DR3)["RA_ICRS"], expected["RA_ICRS"], rtol=0, atol=1e-9)

    # served from the cache even with VizieR gone
    offline = query_vizier(ra, dec, 0.1, role="astrometric", server=f"127.0.0.1:{_closed_port()}",
                           cache_dir=tmp_path, **FAST)
    assert len(offline) < len(first)

    # not covered: another catalogue, a wider cone, a shifted cone -> the network
    query_vizier(ra, dec, 0.12, role="photometric", server=vizier.host, cache_dir=tmp_path, **FAST)
    query_vizier(ra, dec, 0.15, role="astrometric", server=vizier.host, cache_dir=tmp_path, **FAST)
    query_vizier(ra + 0.4, dec, 0.05, role="astrometric", server=vizier.host, cache_dir=tmp_path, **FAST)
    sources = [r["params"]["-source"] for r in vizier.requests[1:]]
    assert sources == ["II/246", "I/355/gaiadr3", "I/355/gaiadr3"]
    # the widest cached cone now covers the first one: no request
    query_vizier(ra, dec, 0.14, role="astrometric", server=vizier.host, cache_dir=tmp_path, **FAST)
    assert len(vizier.requests) == 4


def test_empty_cone_is_an_empty_table_not_an_error(vizier, tmp_path):
    got = query_vizier(10.0, 10.0, 0.01, role="photometric", server=vizier.host, cache_dir=tmp_path, **FAST)
    assert len(got) == 0 and got.colnames == list(TWOMASS_PSC.required)
    assert len(vizier.requests) == 1


@pytest.mark.parametrize("mode", ["503", "close"])
def test_transient_failures_are_retried(vizier, catalogues, tmp_path, mode):
    vizier.fail = [mode, mode]
    ra, dec = CENTRE
    got = query_vizier(ra, dec, 0.05, role="astrometric", server=vizier.host, cache_dir=tmp_path, retries=3,
                       timeout=5.0, backoff=0.01)
    assert len(vizier.requests) == 3
    assert len(got) == len(_expected(catalogues, GAIA_DR3, ra, dec, 0.05))

    vizier.fail = [mode] * 3
    with pytest.raises(RefcatError) as err:
        query_vizier(ra, dec, 0.05, role="astrometric", server=vizier.host, cache_dir=tmp_path / "new",
                     retries=2, timeout=5.0, backoff=0.01)
    assert len(vizier.requests) == 6
    message = str(err.value)
    assert f"VizieR could not be reached at {vizier.host}" in message and "3 attempt(s)" in message
    assert ("HTTP 503" if mode == "503" else "closed connection") in message
    assert not (tmp_path / "new").exists()  # nothing cached


def test_an_untrusted_certificate_is_not_retried(vizier, tmp_path, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")  # verification stays on: the stand-in is not trusted now
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    pattern = r"could not be reached at .*\(certificate verify failed.*; 1 attempt"
    with pytest.raises(RefcatError, match=pattern):
        query_vizier(*CENTRE, 0.1, role="astrometric", server=vizier.host, cache_dir=tmp_path, retries=3,
                     timeout=5.0, backoff=0.01)
    assert vizier.requests == []  # the TLS handshake failed before any HTTP


def test_offline_is_one_line_naming_the_server_and_the_local_alternative(tmp_path):
    host = f"127.0.0.1:{_closed_port()}"
    start = time.monotonic()
    with pytest.raises(RefcatError) as err:
        query_vizier(*CENTRE, 0.1, role="astrometric", server=host, cache_dir=tmp_path, retries=2,
                     timeout=2.0, backoff=0.01)
    assert time.monotonic() - start < 5.0
    message = str(err.value)
    assert "\n" not in message
    assert f"VizieR could not be reached at {host} (Connection refused; 3 attempt(s))" in message
    assert message.endswith("use the local provider: give a local I/355/gaiadr3 table tagged REFCAT_ASTROM "
                            "(VISIONS key local_gaia_catalog)")

    with pytest.raises(RefcatError, match=r"local II/246 table tagged REFCAT_PHOTOM .*local_2mass_catalog"):
        query_vizier(*CENTRE, 0.1, role="photometric", server=host, cache_dir=tmp_path, **FAST)


def test_a_server_that_does_not_answer_times_out(vizier, tmp_path):
    vizier.fail = ["stall", "stall"]
    vizier.stall_s = 1.0
    start = time.monotonic()
    pattern = r"could not be reached at 127\.0\.0\.1:\d+ \(no answer within 0\.2 s; 2 attempt\(s\)\)"
    with pytest.raises(RefcatError, match=pattern):
        query_vizier(*CENTRE, 0.1, role="astrometric", server=vizier.host, cache_dir=tmp_path, retries=1,
                     timeout=0.2, backoff=0.01)
    assert time.monotonic() - start < 2.0
    assert len(vizier.requests) == 2


@pytest.mark.parametrize(
    ("answer", "pattern"),
    [
        ((200, "text/html", b"<!DOCTYPE html><html><body>VizieR is under maintenance</body></html>"),
         r"did not answer the I/355/gaiadr3 query with a VOTable \(it sent '<!DOCTYPE html>.*maintenance"),
        ((200, "text/xml", _votable([Info(ID="Error", name="Error", value="Service overloaded, try later"),
                                     Info(name="QUERY_STATUS", value="ERROR")])),
         r"answered the I/355/gaiadr3 query with an error: Service overloaded, try later"),
        ((200, "text/xml", b"<?xml version='1.0'?>\n<VOTABLE version='1.4'><RESOURCE><TABLE>"),
         r"sent an unreadable VOTable for I/355/gaiadr3"),
        ((404, "text/html", b"<html>Not Found</html>"), r"refused the I/355/gaiadr3 query: HTTP 404"),
    ],
    ids=["html", "vizier-error", "broken-xml", "http-404"],
)
def test_an_answer_that_is_not_a_table_is_a_clear_error(vizier, tmp_path, answer, pattern):
    vizier.answer = answer
    with pytest.raises(RefcatError, match=pattern) as err:
        query_vizier(*CENTRE, 0.1, role="astrometric", server=vizier.host, cache_dir=tmp_path, retries=2,
                     timeout=5.0, backoff=0.01)
    message = str(err.value)
    assert "\n" not in message and vizier.host in message and "use the local provider" in message
    assert len(vizier.requests) == 1  # not retried: asking again gets the same answer
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_bad_server_and_cone_are_errors(tmp_path):
    with pytest.raises(RefcatError, match="host name"):
        query_vizier(*CENTRE, 0.1, role="astrometric", server="http://vizier.example/viz-bin",
                     cache_dir=tmp_path)
    with pytest.raises(RefcatError, match="radius"):
        query_vizier(*CENTRE, 0.0, role="astrometric", cache_dir=tmp_path)
    with pytest.raises(RefcatError, match="unknown reference-catalogue role"):
        query_vizier(*CENTRE, 0.1, role="spectroscopic", cache_dir=tmp_path)


def test_cache_key_contains_the_cone():
    for ra, dec, radius in [(280.03217, -59.95731, 0.12), (359.99996, 10.0, 0.3), (0.00004, -89.99996, 0.01),
                            (12.3, 45.6, 0.1 * 3)]:
        key = cache_key(ra, dec, radius)
        centre = SkyCoord(ra * u.deg, dec * u.deg)
        offset = centre.separation(SkyCoord(key.ra * u.deg, key.dec * u.deg)).deg
        assert 0 <= key.ra < 360 and offset + radius <= key.radius + 1e-9
        assert key.radius <= radius + 2e-4
        near = cache_key(ra + 1e-6, dec - 1e-6, radius)  # neighbours share the centre
        assert (near.ra, near.dec) == (key.ra, key.dec)
