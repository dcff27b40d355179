"""Which links stay links: only those to the hosts the sources live on (issue #14, route 8)."""

from __future__ import annotations

from bot.core.links import LINK_REMOVED, LinkPolicy, defuse_links, foreign_links, without_urls

POLICY = LinkPolicy.for_prefixes(["https://drive.example.com/handbook/", "file:///srv/share", None])


def test_the_policy_trusts_the_hosts_of_the_sources_url_prefixes_only() -> None:
    assert POLICY.hosts == frozenset({"drive.example.com"})
    assert POLICY.allows("https://drive.example.com/people/pto.md")
    assert POLICY.allows("http://DRIVE.example.com/x")
    assert not LinkPolicy().allows("https://drive.example.com/x")


def test_lookalike_urls_do_not_pass_for_the_sources_host() -> None:
    for url in [
        "https://drive.example.com@x.example/?q=salaries",  # user info: the host is x.example
        "https://x.example\\@drive.example.com/",  # browsers read the backslash as a slash
        "https://drive.example.com.x.example/",
        "https://drive.example.com:8443/",  # another port, another server
        "javascript:alert(1)//drive.example.com",
        "file:///etc/passwd",
    ]:
        assert not POLICY.allows(url), url


def test_an_exfiltration_link_keeps_only_its_label() -> None:
    text = "Reset it at [the IT portal](https://x.example/?q=senior+engineers+120k) [1]."
    assert defuse_links(text, POLICY) == "Reset it at the IT portal [1]."
    assert foreign_links(text, POLICY) == ["https://x.example/?q=senior+engineers+120k"]


def test_every_link_syntax_to_a_foreign_host_is_defused() -> None:
    text = (
        "![logo](https://x.example/pixel.png?q=120k) <https://x.example/?q=1|portal> "
        "<https://x.example/a> https://x.example/b?q=2, www.x.example/c and x.example/?q=3."
    )
    defused = defuse_links(text, POLICY)
    assert "x.example" not in defused
    assert defused == (f"logo portal {LINK_REMOVED} {LINK_REMOVED}, {LINK_REMOVED} and {LINK_REMOVED}.")


def test_links_to_the_sources_host_stay_links() -> None:
    text = (
        "See [the PTO policy](https://drive.example.com/handbook/pto.md), "
        "https://drive.example.com/handbook/faq.md and <https://drive.example.com/a|A>."
    )
    assert defuse_links(text, POLICY) == (
        "See [the PTO policy](https://drive.example.com/handbook/pto.md), "
        "https://drive.example.com/handbook/faq.md and [A](https://drive.example.com/a)."
    )
    assert foreign_links(text, POLICY) == []


def test_an_image_on_the_sources_host_becomes_a_link_so_nothing_is_fetched() -> None:
    assert defuse_links("![chart](https://drive.example.com/c.png)", POLICY) == (
        "[chart](https://drive.example.com/c.png)"
    )


def test_text_without_links_is_unchanged() -> None:
    text = "Use node.js 2.5 (e.g. in README.md#setup) [1]. Cost: $2,000/year."
    assert defuse_links(text, POLICY) == text
    assert foreign_links(text, POLICY) == []


def test_words_inside_urls_are_not_what_a_reader_reads() -> None:
    assert without_urls("See [the portal](https://x.example/?q=senior+120k) or https://y.example/z.") == (
        "See the portal or ."
    )
