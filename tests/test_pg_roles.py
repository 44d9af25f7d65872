"""A PostgreSQL user that may only read, or may not create tables, gets the true cause in
one line (it used to read 'lost the storage ... once it is reachable' and 'cannot reach
storage'), its password masked; a reader can still show the study. A real server, real roles."""

from __future__ import annotations

import uuid

from conftest import cli, needs_mnist, one_line_error, write_study

pytestmark = needs_mnist


def _admin(url, *statements):
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        for s in statements:
            c.exec_driver_sql(s)
    engine.dispose()


def _as(url, user, password):
    rest = url.split("@", 1)[1]
    return f"postgresql+psycopg://{user}:{password}@{rest}"


def test_a_read_only_user_and_one_without_create_get_the_true_cause(tmp_path, pg_server, pg_url):
    study = write_study(tmp_path, n_trials=1)
    assert cli("run", "--study", study, "--storage", pg_url).exit_code == 0
    reader, password = "reader_" + uuid.uuid4().hex[:8], "Rd-pw-" + uuid.uuid4().hex[:8]
    db = pg_url.rsplit("/", 1)[1]
    _admin(pg_url, f"CREATE ROLE {reader} LOGIN PASSWORD '{password}'", f"GRANT CONNECT ON DATABASE {db} TO {reader}",
           f"GRANT USAGE ON SCHEMA public TO {reader}", f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {reader}")
    url = _as(pg_url, reader, password)
    r = cli("run", "--study", study, "--storage", url, "--n-trials", 2)
    line = one_line_error(r, f"the database user '{reader}' lacks a privilege the study needs", "grant it")
    assert "lost the storage" not in line and password not in r.output + line
    shown = cli("show", "--study", "tiny", "--storage", url)  # reading is all it may do, and it may
    assert shown.exit_code == 0, shown.output
    # a fresh database and a user who may connect but not create the schema
    fresh, maker = "fresh_" + uuid.uuid4().hex[:8], "maker_" + uuid.uuid4().hex[:8]
    _admin(pg_server.url, f"CREATE DATABASE {fresh}", f"CREATE ROLE {maker} LOGIN PASSWORD '{password}'",
           f"GRANT CONNECT ON DATABASE {fresh} TO {maker}")
    url = _as(pg_server.url.rsplit("/", 1)[0] + "/" + fresh, maker, password)
    r = cli("run", "--study", study, "--storage", url)
    line = one_line_error(r, f"the database user '{maker}' lacks a privilege", "creating the first study needs CREATE")
    assert "cannot reach" not in line and password not in r.output + line
