"""Production's HTTPS settings, as kokatto_site/settings.py derives them from the environment.

Each test starts the app in a subprocess with the README's production variables (see
tests/security/production.py) and looks at what it answers over plain http and https.
"""

from tests.security.production import (
    HOST,
    ONE_YEAR,
    answers,
    make_run_env,
    manage,
    production_env,
)

LOGIN = "/admin/login/"


def test_check_deploy_finds_nothing_to_report_with_the_production_variables(tmp_path):
    env = production_env(tmp_path)
    # As in production: a migrated database, whose checks run too.
    assert manage(env, "migrate", "--verbosity", "0").returncode == 0

    result = manage(env, "check", "--deploy", "--database", "default", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_fails_when_production_turns_hsts_off(tmp_path):
    env = production_env(tmp_path, SECURE_HSTS_SECONDS=0)

    result = manage(env, "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode != 0
    assert "security.W004" in result.stderr


def test_check_deploy_warns_when_the_recipient_hash_key_is_left_to_secret_key(tmp_path):
    env = production_env(tmp_path)
    del env["RECIPIENT_HASH_KEY"]

    result = manage(env, "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode != 0
    assert "notifications.W001" in result.stderr


def test_plain_http_is_redirected_to_https_whose_answers_tell_browsers_to_stay(tmp_path):
    plain, secure = answers(
        production_env(tmp_path), {"path": LOGIN}, {"path": LOGIN, "secure": True}
    )

    assert plain["status"] == 301
    assert plain["headers"]["Location"] == f"https://{HOST}{LOGIN}"
    assert secure["status"] == 200
    # A year; sub-domains and preload are the domain owner's decision, off by default.
    assert secure["headers"]["Strict-Transport-Security"] == f"max-age={ONE_YEAR}"
    assert secure["cookies"]["csrftoken"]["secure"] is True
    assert secure["cookies"]["csrftoken"]["httponly"] is True


def test_hsts_covers_sub_domains_and_asks_for_preload_only_when_set(tmp_path):
    env = production_env(tmp_path, SECURE_HSTS_INCLUDE_SUBDOMAINS="true", SECURE_HSTS_PRELOAD="1")

    (secure,) = answers(env, {"path": LOGIN, "secure": True})

    assert secure["headers"]["Strict-Transport-Security"] == (
        f"max-age={ONE_YEAR}; includeSubDomains; preload"
    )


def test_a_forged_x_forwarded_proto_does_not_pass_plain_http_off_as_https(tmp_path):
    (forged,) = answers(
        production_env(tmp_path), {"path": LOGIN, "headers": {"X-Forwarded-Proto": "https"}}
    )

    assert forged["status"] == 301
    assert forged["headers"]["Location"] == f"https://{HOST}{LOGIN}"
    assert "Strict-Transport-Security" not in forged["headers"]


def test_behind_a_trusted_proxy_its_x_forwarded_proto_says_whether_the_client_used_https(
    tmp_path,
):
    env = production_env(tmp_path, BEHIND_TRUSTED_PROXY="true")

    proxied_https, proxied_http = answers(
        env,
        {"path": LOGIN, "headers": {"X-Forwarded-Proto": "https"}},
        {"path": LOGIN, "headers": {"X-Forwarded-Proto": "http"}},
    )

    assert proxied_https["status"] == 200
    assert proxied_https["headers"]["Strict-Transport-Security"] == f"max-age={ONE_YEAR}"
    assert proxied_http["status"] == 301


def test_the_redirect_can_be_left_to_a_tls_terminating_proxy(tmp_path):
    env = production_env(tmp_path, SECURE_SSL_REDIRECT="false")

    plain, secure = answers(env, {"path": LOGIN}, {"path": LOGIN, "secure": True})

    assert plain["status"] == 200
    assert secure["headers"]["Strict-Transport-Security"] == f"max-age={ONE_YEAR}"
    # The cookies still never travel over plain http.
    assert plain["cookies"]["csrftoken"]["secure"] is True


def test_make_run_serves_plain_http_with_cookies_that_work_there(tmp_path):
    plain, secure = answers(
        make_run_env(tmp_path),
        {"path": LOGIN},
        {"path": LOGIN, "secure": True},
        host="127.0.0.1",
    )

    assert plain["status"] == 200
    assert plain["cookies"]["csrftoken"]["secure"] == ""
    assert "Strict-Transport-Security" not in secure["headers"]


def test_every_answer_forbids_framing_sniffing_and_cross_site_referrers(tmp_path):
    (secure,) = answers(production_env(tmp_path), {"path": LOGIN, "secure": True})

    headers = secure["headers"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
