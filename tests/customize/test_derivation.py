from bot.customize.derivation import derive_pairs


def test_faq_pairs_are_taken_as_written() -> None:
    text = "Q: When is payday?\nA: Salaries are paid on the 25th.\n\nQ: Who approves expenses?\nA: Your manager does."
    pairs = derive_pairs("People FAQ", "", text)
    assert [(p.question, p.answer, p.kind) for p in pairs if p.kind == "faq"] == [
        ("When is payday?", "Salaries are paid on the 25th.", "faq"),
        ("Who approves expenses?", "Your manager does.", "faq"),
    ]


def test_heading_becomes_a_question_answered_by_the_first_sentences() -> None:
    text = "You may carry over at most 5 unused days. They expire on 31 March. Days above the limit are lost."
    pairs = derive_pairs("Time off", "Time off > Carry-over", text)
    heading = [p for p in pairs if p.kind == "heading"]
    assert len(heading) == 1
    assert "carry-over" in heading[0].question.lower() and heading[0].question.endswith("?")
    assert heading[0].answer == "You may carry over at most 5 unused days. They expire on 31 March."


def test_heading_that_is_a_question_is_kept() -> None:
    pairs = derive_pairs("Benefits", "Benefits > Can I bike to work?", "Yes, the lease bike plan covers e-bikes too.")
    assert pairs[0].question == "Can I bike to work?" and pairs[0].kind == "faq"


def test_definitions_key_values_and_table_rows() -> None:
    definition = derive_pairs("On-call", "", "Dockyard is the deployment pipeline for the fleet software.")
    assert ("What is Dockyard?", "definition") in {(p.question, p.kind) for p in definition}
    glossary = derive_pairs("Glossary", "terms", "terms:\n  Anchor: Our HR system, for time off and payslips.")
    assert [(p.question, p.answer) for p in glossary] == [
        ("What is Anchor?", "Anchor: Our HR system, for time off and payslips.")
    ]
    table = derive_pairs("Team directory", "", "Name | Role | Office\nNoor Vermeulen | Head of People | Rotterdam")
    assert len(table) == 1 and table[0].kind == "table_row"
    assert table[0].question in {"What is the role of Noor Vermeulen?", "What is the office of Noor Vermeulen?"}
    assert table[0].answer.split(" is ")[-1].rstrip(".") in {"Head of People", "Rotterdam"}


def test_derivation_is_deterministic() -> None:
    text = "Parking is free in the garage. Register your plate at reception."
    assert derive_pairs("Office", "Office > Parking", text) == derive_pairs("Office", "Office > Parking", text)


def test_sentences_that_only_look_like_definitions_or_labels_are_skipped() -> None:
    pairs = derive_pairs(
        "Handbook",
        "",
        "This folder is the employee handbook of the company.\n\nShifts are one week long. The handoff is on Mondays.",
    )
    assert "What is This folder?" not in {p.question for p in pairs}
    assert all("shifts are" not in p.question.lower() for p in pairs)
    who = derive_pairs(
        "Handbook", "Handbook > Who maintains it", "The People team owns the handbook and reviews it yearly."
    )
    assert who[0].question == "Who maintains it?"


def test_clauses_labels_and_example_headings_yield_no_questions() -> None:
    text = (
        "Once a release is cut, the branch is frozen for fixes only.\n\n"
        "While Git is distributed, Perforce is centralised by design.\n\n"
        "Determining whether a PO is required is the account executive's job.\n\n"
        "The following recurring touchpoints are scheduled by your manager.\n\n"
        "Busybox is a swiss army knife tool for software."
    )
    questions = {p.question for p in derive_pairs("Releases", "", text)}
    assert questions == {"What is Busybox?"}
    buddies = derive_pairs("Onboarding", "", "Onboarding buddies are teammates who answer a new hire's questions.")
    assert "What are Onboarding buddies?" in {p.question for p in buddies}
    labels = "Note: our policy is that every teammate has a managed laptop.\nStep 2: notify your People Partner in writing.\nRule #4: use kindness when discussing competitors.\nTrue ownership revolves around one thing: what can I do.\nFlat Renewal: no change to the contract terms."
    assert [p.question for p in derive_pairs("Sales", "", labels)] == ["What is Flat Renewal?"]
    assert derive_pairs("Writing", "Writing > Buttons > No", "Never label a button with a full sentence.") == []
    verdict = derive_pairs("Writing", "", "Yes. Add your repositories from your code host and search.")
    assert not [p for p in verdict if p.kind == "heading"]


def test_table_cells_are_plain_text_and_empty_cells_are_not_asked_about() -> None:
    table = "Error | Cause | Fix\n**Timeout** | N/A | Raise the <br /> limit to 60 s.\nOOM | - | ✓"
    pairs = derive_pairs("Troubleshooting", "", table)
    assert [(p.question, p.answer) for p in pairs] == [
        ("What is the fix of Timeout?", "The fix of Timeout is Raise the limit to 60 s.")
    ]
