from bot.customize.redaction import Redactor

SECRETS = (
    "slack xoxb-1234567890-abcdefghijklmnop\n"
    "github ghp_abcdefghijklmnopqrstuvwxyz0123456789\n"
    "aws AKIAABCDEFGHIJKLMNOP\n"
    "password: hunter2hunter\n"
    'api_key = "s3cr3t-value"\n'
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
)


def test_secrets_are_always_redacted_and_counted() -> None:
    clean, counts = Redactor().redact(SECRETS)
    for secret in ("xoxb-", "ghp_", "AKIA", "hunter2", "s3cr3t", "b3BlbnNzaC1rZXktdjEAAAAA"):
        assert secret not in clean
    assert counts == {
        "slack_token": 1,
        "github_token": 1,
        "aws_key": 1,
        "password": 2,
        "private_key": 1,
    }
    assert "password: [REDACTED password]" in clean  # the key stays readable


def test_emails_and_phones_only_when_asked() -> None:
    text = "Mail noor@tidewell.example or call +31 10 123 4567 before 2026-03-31 (27 days)."
    kept, counts = Redactor().redact(text)
    assert kept == text and not counts
    clean, counts = Redactor(emails=True, phones=True).redact(text)
    assert "noor@" not in clean and "123 4567" not in clean
    assert "2026-03-31" in clean and "27 days" in clean  # dates and amounts are not phones
    assert counts == {"email": 1, "phone": 1}


def test_ordinary_prose_is_untouched() -> None:
    text = "The password policy says: rotate every 90 days. Ask #it-help for a token."
    assert Redactor(emails=True, phones=True).redact(text) == (text, {})
