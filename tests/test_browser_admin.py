"""The admin page in headless Chromium: upload with per-file results (new, duplicate, refused), a rejected image
restored from the flags queue, a work rule created and edited, a taxonomy node added, the descriptor schema checked
by the database; an annotator gets the 403 page."""
from __future__ import annotations

import re

import psycopg
import pytest
from playwright.sync_api import expect

from ai_services import irregular_lesion, round_lesion
from browser import screenshot, signed_in_page
from sqlcall import PASSWORD, act, call, make_team


@pytest.fixture(scope="module")
def adm(database_url):
    with psycopg.connect(database_url) as conn:
        team = make_team(conn, "adm", ann=["annotator"], ann2=["annotator"])
        project, admin = team["project"], team["admin"]
        call(conn, admin, "admin", "upsert_taxonomy_node", project_id=project, code="NEO", name="Neoplasms")
        call(conn, admin, "admin", "create_work_rule", project_id=project, name="everything", max_items=100)
    return {"project": project, "admin": admin, "ann": team["ann"], "admin_email": team["emails"]["admin"],
            "ann_email": team["emails"]["ann"], "ann2_email": team["emails"]["ann2"], "db": database_url}


def q(adm, sql, *args):
    with psycopg.connect(adm["db"]) as conn:
        return conn.execute(sql, args).fetchall()


def test_admin_uploads_manages_rules_flags_taxonomy_and_schema(app_server, adm, tmp_path):
    one, two = tmp_path / "one.png", tmp_path / "two.png"
    one.write_bytes(irregular_lesion()[0])
    two.write_bytes(round_lesion()[0])
    junk = tmp_path / "notes.png"
    junk.write_bytes(b"%PDF-1.4 this is not an image")
    with signed_in_page(app_server.url, adm["admin_email"], PASSWORD) as page:
        page.set_viewport_size({"width": 1280, "height": 800})
        page.goto(f"/admin?project={adm['project']}")
        expect(page.locator("#project-name")).to_have_text(q(adm, "SELECT name FROM core.project WHERE id = %s",
                                                               adm["project"])[0][0])
        page.set_input_files("#up-files", [str(one), str(two), str(one), str(junk)])
        rows = page.locator("#up-list li")
        expect(rows).to_have_count(4)
        expect(page.locator("#up-list li.ok")).to_have_count(2, timeout=20000)
        expect(page.locator("#up-list li.dup")).to_have_count(1)
        expect(page.locator("#up-list li.bad")).to_have_count(1)
        expect(page.locator("#up-list li.bad .state")).to_contain_text("image")
        assert q(adm, "SELECT count(*) FROM core.image WHERE project_id = %s", adm["project"]) == [(2,)]
        expect(page.locator("#queue-rows")).to_contain_text("new")
        assert screenshot(page, tmp_path, "admin-page").stat().st_size > 10_000

        # vacation cover: what ann holds goes to ann2 in one step
        with psycopg.connect(adm["db"]) as conn:
            held = call(conn, adm["ann"], "annotator", "next_item", project_id=adm["project"])["item"]["id"]
        page.reload()
        ann_name, ann2_name = adm["ann_email"].split("@")[0], adm["ann2_email"].split("@")[0]
        ann_row = page.locator("#member-rows tr", has_text=adm["ann_email"])  # names also appear in the pickers
        page.get_by_label(f"Give {ann_name}'s items to").select_option(label=ann2_name)
        ann_row.get_by_role("button", name="Reassign").click()
        expect(ann_row.get_by_role("button", name="Reassign")).to_have_count(0)
        assert q(adm, "SELECT annotator_id, assignee_id FROM core.work_item WHERE id = %s", held) == \
            [(q(adm, "SELECT id FROM auth.\"user\" WHERE email = %s", adm["ann2_email"])[0][0],) * 2]

        # roles, expertise and review level edited in place
        page.get_by_label(f"Reviewer of {ann2_name}").check()
        page.get_by_label(f"Review level of {ann2_name}").fill("2")
        page.get_by_label(f"Review level of {ann2_name}").press("Tab")
        expect(page.get_by_label(f"Review level of {ann2_name}")).to_have_value("2")
        for _ in range(50):  # the change events' calls are asynchronous: wait for them to land
            got = q(adm, "SELECT annotator, reviewer, review_level FROM core.project_member m "
                         "JOIN auth.\"user\" u ON u.id = m.user_id WHERE u.email = %s AND m.project_id = %s",
                    adm["ann2_email"], adm["project"])
            if got == [(True, True, 2)]:
                break
            page.wait_for_timeout(100)
        assert got == [(True, True, 2)]  # roles in this project, applied at the next request
        expect(page.locator("#admin-error")).to_be_hidden()

        # a rule: created, then its priority changed inline
        page.fill("#rule-form input[name=name]", "urgent")
        page.fill("#rule-form input[name=max_items]", "5")
        page.fill("#rule-form input[name=priority]", "7")
        # the preview counts what the filters take as they are typed (the two uploads, twice each)
        page.fill("#rule-form input[name=annotations_per_image]", "2")
        expect(page.locator("#rule-preview")).to_have_text("2 images match · 4 items · generate would create 4")
        page.fill("#rule-form input[name=metadata_filter]", '{"site": "nowhere"}')
        expect(page.locator("#rule-preview")).to_contain_text("0 images match")
        page.fill("#rule-form input[name=metadata_filter]", '{"site": ')
        expect(page.locator("#rule-preview")).to_have_text("metadata filter: not valid JSON")
        page.fill("#rule-form input[name=metadata_filter]", "")
        page.fill("#rule-form input[name=annotations_per_image]", "1")
        expect(page.locator("#rule-preview")).to_have_text("2 images match · 2 items · generate would create 2")
        page.click("#rule-form button")
        expect(page.locator("#rule-rows")).to_contain_text("urgent")
        page.get_by_label("Priority of urgent").fill("9")
        page.get_by_label("Priority of urgent").press("Tab")
        expect(page.get_by_label("Priority of urgent")).to_have_value("9")
        page.wait_for_timeout(300)
        assert q(adm, "SELECT priority FROM core.work_rule WHERE project_id = %s AND name = 'urgent'",
                 adm["project"]) == [(9,)]
        # a cleared priority is refused and put back: never sent as 0 (Number("") is 0)
        page.get_by_label("Priority of urgent").fill("")
        page.get_by_label("Priority of urgent").press("Tab")
        expect(page.locator("#admin-error")).to_contain_text("must be a whole number")
        expect(page.get_by_label("Priority of urgent")).to_have_value("9")
        page.wait_for_timeout(300)
        assert q(adm, "SELECT priority FROM core.work_rule WHERE project_id = %s AND name = 'urgent'",
                 adm["project"]) == [(9,)]
        # generate: the items the preview promised
        page.locator("#rule-rows tr", has_text="urgent").get_by_role("button", name="Generate items").click()
        count = "SELECT count(*) FROM core.work_item w JOIN core.work_rule r ON r.id = w.rule_id " \
                "WHERE r.project_id = %s AND r.name = 'urgent'"
        for _ in range(50):
            if q(adm, count, adm["project"]) == [(2,)]:
                break
            page.wait_for_timeout(100)
        assert q(adm, count, adm["project"]) == [(2,)]

        # a taxonomy node under NEO
        page.fill("#node-form input[name=code]", "MEL")
        page.fill("#node-form input[name=name]", "Melanoma")
        page.fill("#node-form input[name=parent_code]", "NEO")
        page.fill("#node-form input[name=synonyms]", "malignant melanoma, MM")
        page.click("#node-form button")
        expect(page.locator("#tax-tree")).to_contain_text("Melanoma (MEL)")

        # the schema: JSON errors in the page, schema errors from the database, nothing saved until both pass
        page.fill("#schema-json", "[{")
        page.click("#schema-save")
        expect(page.locator("#schema-error")).to_contain_text("Not valid JSON")
        page.fill("#schema-json", '[{"key": "colours", "label": "Colours", "kind": "multi"}]')
        page.click("#schema-save")
        expect(page.locator("#schema-error")).to_be_visible()
        assert q(adm, "SELECT count(*) FROM core.descriptor_field WHERE project_id = %s", adm["project"]) == [(0,)]
        page.fill("#schema-json", '[{"key": "colours", "label": "Colours", "kind": "multi", "options": ["brown", "black"]}]')
        page.click("#schema-save")
        expect(page.locator("#schema-state")).to_contain_text("Saved")

    # an annotator rejects an image; the admin restores it from the flags queue
    with psycopg.connect(adm["db"]) as conn:
        with conn.transaction():
            act(conn, adm["ann"], "annotator")
            item = conn.execute("SELECT api.next_item(%s) -> 'item' ->> 'id'", (adm["project"],)).fetchone()[0]
            conn.execute("SELECT api.reject_image(%s, 'bad_quality', 'blurred')", (int(item),))
    with signed_in_page(app_server.url, adm["admin_email"], PASSWORD) as page:
        page.goto(f"/admin?project={adm['project']}#flags")
        expect(page.locator("#flag-list")).to_contain_text("blurred")
        page.click("#flag-list button:has-text('Restore to the queue')")
        expect(page.locator("#flag-list")).to_contain_text("No open flags.")
        assert q(adm, "SELECT resolution FROM core.work_item_flag f JOIN core.work_item w ON w.id = f.item_id "
                      "WHERE w.project_id = %s", adm["project"]) == [("restored",)]

    with signed_in_page(app_server.url, adm["ann_email"], PASSWORD) as page:
        r = page.goto(f"/admin?project={adm['project']}")
        assert r.status == 403
        expect(page.locator("h1")).to_have_text("Not for your role")


def test_organization_admin_adds_a_person_and_manages_a_partner_key(app_server, adm):
    """People and per-project roles, then a partner key created (shown once) and revoked, in the page."""
    email = f"new-{adm['project']}@adm.test"
    with signed_in_page(app_server.url, adm["admin_email"], PASSWORD) as page:
        page.goto(f"/admin?project={adm['project']}#people")
        form = page.locator("#user-form")
        form.locator("input[name=email]").fill(email)
        form.locator("input[name=display_name]").fill("Dr New")
        form.locator("input[name=password]").fill("a long enough password")
        form.get_by_label("annotator").check()
        form.get_by_label("reviewer").check()
        form.get_by_role("button", name="Create and add to project").click()
        expect(page.get_by_label("Reviewer of Dr New")).to_be_checked()
        expect(page.get_by_label("Annotator of Dr New")).to_be_checked()
        assert q(adm, "SELECT m.annotator, m.reviewer, m.admin FROM core.project_member m JOIN auth.\"user\" u "
                      "ON u.id = m.user_id WHERE u.email = %s AND m.project_id = %s", email, adm["project"]) \
            == [(True, True, False)]

        page.goto(f"/admin?project={adm['project']}#partners")
        keys = page.locator("#key-form")
        keys.locator("input[name=name]").fill("Teledermatology partner")
        keys.get_by_role("button", name="Create key").click()
        secret = page.locator("#new-key")
        expect(secret).to_have_value(re.compile(r"^dl_[a-z0-9]{8}_[a-z0-9]{32}$"))
        expect(page.locator("#key-rows")).to_contain_text("active")
        prefix = secret.input_value()[:11]
        assert q(adm, "SELECT count(*) FROM auth.api_key WHERE prefix = %s AND revoked_at IS NULL", prefix) == [(1,)]
        page.get_by_label(f"Revoke key Teledermatology partner ({prefix})").click()
        expect(page.locator("#key-rows")).to_contain_text("revoked")
        assert q(adm, "SELECT count(*) FROM auth.api_key WHERE prefix = %s AND revoked_at IS NOT NULL", prefix) == [(1,)]


def test_the_operator_creates_an_organization_and_brings_in_its_admin(app_server, adm):
    with psycopg.connect(adm["db"]) as conn:
        email = f"op-{adm['project']}@adm.test"
        conn.execute("INSERT INTO auth.\"user\" (email, display_name, password_hash, operator) "
                     "VALUES (%s, 'Olga', crypt(%s, gen_salt('bf', 4)), true)", (email, PASSWORD))
        conn.commit()
    name = f"Clinic {adm['project']}"
    with signed_in_page(app_server.url, email, PASSWORD) as page:
        page.goto("/organizations")
        page.locator("#org-form input[name=name]").fill(name)
        page.locator("#org-form").get_by_role("button", name="Create").click()
        expect(page.locator("#org-rows")).to_contain_text(name)
        form = page.locator("#org-member-form")
        form.locator("input[name=email]").fill(adm["ann2_email"])
        form.get_by_role("button", name="Add").click()
        expect(page.locator("#org-status")).to_contain_text("added")
    assert q(adm, "SELECT o.admin FROM core.org_member o JOIN core.organization g ON g.id = o.organization_id "
                  "JOIN auth.\"user\" u ON u.id = o.user_id WHERE g.name = %s AND u.email = %s",
             name, adm["ann2_email"]) == [(True,)]
