"""End to end: the real `authctl serve` on a free loopback port, driven over HTTP."""

from __future__ import annotations

import httpx
import pytest

from tests.apphelpers import PASSWORD
from tests.serving import authctl, free_port, running_server, seed_demo_db


@pytest.mark.slow
def test_serve_end_to_end(tmp_path):
    db = tmp_path / "e2e.db"
    seed_demo_db(db, tmp_path)
    with running_server(db, tmp_path, free_port()) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        rahul = client.post("/token", data={"username": "rahul", "password": PASSWORD})
        assert rahul.status_code == 200, rahul.text
        rahul_token = rahul.json()["access_token"]
        denied = client.delete("/student/3", headers={"Authorization": f"Bearer {rahul_token}"})
        assert denied.status_code == 403
        assert "students:delete" in denied.json()["detail"]
        assert client.delete("/student/3").status_code == 401

        suman = client.post("/token", data={"username": "suman", "password": PASSWORD})
        assert suman.status_code == 200, suman.text
        allowed = client.delete("/student/3", headers={"Authorization": f"Bearer {suman.json()['access_token']}"})
        assert allowed.status_code == 200
        assert allowed.json() == {"message": "Student 3 deleted"}
        assert client.get("/docs").status_code == 200
        # a token in the query string is ignored, and not written to the access log
        assert client.get(f"/profile?access_token={rahul_token}").status_code == 401
    output = server.stdout + server.stderr
    assert server.process.returncode == 0, server.stderr
    assert f"{server.url}/docs" in server.stderr and "/token" in server.stderr
    assert "server stopped" in server.stderr
    assert rahul_token not in output


@pytest.mark.slow
def test_serve_refuses_a_missing_database(tmp_path):
    result = authctl("--db", str(tmp_path / "missing.db"), "serve", "--port", "0", cwd=tmp_path)
    assert result.returncode == 1
    assert "no database" in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.slow
def test_serve_bad_app_is_one_line_exit_1(tmp_path):
    db = tmp_path / "a.db"
    assert authctl("--db", str(db), "init", cwd=tmp_path).returncode == 0
    result = authctl("--db", str(db), "serve", "--app", "no_such_module_here:app", "--port", "0",
                      cwd=tmp_path)
    assert result.returncode == 1
    assert "no module named" in result.stderr and result.stderr.count("\n") == 1
