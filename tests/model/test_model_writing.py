from pathlib import Path

from bot.model.lazy import LazyModel
from bot.model.writing import MeasuredWriting, WritingPolicy
from bot.settings import AgentSettings
from tests.core.doubles import ScriptedModel


def test_auto_lets_a_model_write_only_once_measured_to_pass_the_check(tmp_path: Path) -> None:
    measured = MeasuredWriting(tmp_path / "model" / "writing.json")
    policy = WritingPolicy(AgentSettings(min_generated_shown=0.5), measured)
    assert not policy.allows("SmolLM2", None), "never measured: the evidence answers"
    measured.record("SmolLM2", None, 0.0, questions=40)
    measured.record("SmolLM2", "v2", 0.62, questions=40)
    assert not policy.allows("SmolLM2", None)
    assert policy.allows("SmolLM2", "v2") and not policy.allows("SmolLM2", "v3")
    measured.record("SmolLM2", "v2", 0.3, questions=40)  # the last measurement counts
    assert not policy.allows("SmolLM2", "v2")
    assert measured.get("SmolLM2", "v2").questions == 40


def test_always_and_never_ignore_measurements(tmp_path: Path) -> None:
    measured = MeasuredWriting(tmp_path / "writing.json")
    measured.record("m", None, 1.0, questions=10)
    assert not WritingPolicy(AgentSettings(generate="never"), measured).allows("m", None)
    assert WritingPolicy(AgentSettings(generate="always"), measured).allows("other", None)


def test_a_damaged_measurement_file_reads_as_never_measured(tmp_path: Path) -> None:
    path = tmp_path / "writing.json"
    path.write_text("{not json")
    assert MeasuredWriting(path).get("m", None) is None
    MeasuredWriting(path).record("m", None, 0.9, questions=5)  # and is replaced whole
    assert MeasuredWriting(path).get("m", None).generated_shown == 0.9


def test_the_lazy_model_loads_once_on_first_use_and_names_itself_before() -> None:
    loads: list[int] = []

    def load() -> ScriptedModel:
        loads.append(1)
        return ScriptedModel("Hello [1].")

    lazy = LazyModel(load, "scripted", None)
    assert (lazy.name, lazy.adapter, lazy.loaded) == ("scripted", None, False)
    lazy.use_adapter(None)  # the current one: nothing to load
    assert not lazy.loaded
    assert "".join(lazy.stream([])) == "Hello [1]."
    assert lazy.count_tokens([]) >= 0 and lazy.loaded and loads == [1]
