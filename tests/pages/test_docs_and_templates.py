"""docs/pages.md's example runs as written; host templates override ours."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

from jinja2 import ChoiceLoader, FileSystemLoader

from tests.pages.conftest import csrf_token, shown_secret

DOC = Path(__file__).resolve().parents[2] / "docs" / "pages.md"


def _doc_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), re.S)


def test_the_mounting_example_of_the_docs_works_as_written(tmp_path, monkeypatch):
    module = types.ModuleType("pages_doc_example")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(_doc_blocks("python")[0], str(DOC), "exec"), module.__dict__)
    app = module.create_app(f"sqlite:///{tmp_path / 'doc.sqlite'}")
    db = module.db
    with app.app_context():
        db.create_all()
        db.session.add(module.User(id=1, email="ann@example.test"))
        db.session.commit()
    client = app.test_client()
    # Signed out: no login_view in the minimal app, so Flask-Login answers 401.
    assert client.get("/settings/api-keys/").status_code == 401
    with client.session_transaction() as session:
        session["_user_id"] = "1"
    page = client.get("/settings/api-keys/")
    assert page.status_code == 200
    assert "<title>API keys</title>" in page.text  # the default base template
    assert "You have no API keys yet" in page.text
    form = client.get("/settings/api-keys/new")
    response = client.post(
        "/settings/api-keys/new",
        data={
            "csrf_token": csrf_token(form.text),
            "name": "doc key",
            "expires": "30d",
            "access": "read",
        },
    )
    assert response.status_code == 200
    secret = shown_secret(response.text)
    assert secret.startswith("ak_")
    assert "mcpServers" not in response.text  # APIKEYS_MCP_URL is not set
    with app.app_context():
        key = module.apikeys.service.verifier.find_by_secret(secret)
        assert key.scopes == ["doc.read"]
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


def test_a_host_template_with_the_same_name_overrides_ours(app, bob, tmp_path):
    override = tmp_path / "host-templates" / "apikeys"
    override.mkdir(parents=True)
    (override / "index.html").write_text(
        _doc_blocks("jinja")[0].replace("Your integrations", "Host override {{ 1 + 1 }}")
    )
    app.jinja_loader = ChoiceLoader(
        [FileSystemLoader(str(tmp_path / "host-templates")), app.jinja_loader]
    )
    page = bob.get("/")
    assert page.status_code == 200
    assert "<h1>Host override 2</h1>" in page.text
    assert "You have no API keys yet" not in page.text
    assert 'href="/static/site.css"' in page.text  # still inside the host's base.html
    assert "Create an API key" in bob.get("/new").text  # other pages are still ours


def test_the_example_app_extends_its_own_base_template(bob):
    page = bob.get("/")
    assert "<title>API keys · Ledgerly</title>" in page.text
    assert 'aria-label="Main"' in page.text
